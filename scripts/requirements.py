"""Print tltutor's pip requirements from settings.ini (one source of truth for setup, CI and environment.yml)."""
import configparser, sys
from pathlib import Path

cfg = configparser.ConfigParser()
cfg.read(Path(__file__).resolve().parent.parent/'settings.ini')
keys = sys.argv[1:] or ['requirements', 'dev_requirements']
print('\n'.join(r for k in keys for r in cfg['DEFAULT'][k].split()))
