"""pytest configuration shared by tests/ and the nbval run over nbs/."""
import os

os.environ.setdefault('TLTUTOR_SCALE', 'quick')  # stored notebook outputs are the quick scale's


def pytest_collection_modifyitems(config, items):
    "Let nbval check cells that nbdev_clean stripped of their execution_count (it would call them unrun)."
    for item in items:
        cell = getattr(item, 'cell', None)
        if cell is not None and cell.get('outputs') and cell.get('execution_count') is None:
            cell['execution_count'] = 1
