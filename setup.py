"""Packaging for tltutor, read from settings.ini (the nbdev 2 layout)."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
c = cfg['DEFAULT']
requirements = c['requirements'].split()          # nodeps_requirements: installed apart, with --no-deps
scripts = [s.strip() for s in c.get('console_scripts', '').split() if s.strip()]

setuptools.setup(
    name=c['lib_name'], version=c['version'], description=c['description'],
    long_description=(Path(__file__).parent/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=c['author'], author_email=c['author_email'], license='Apache-2.0', url=c['git_url'],
    packages=setuptools.find_packages(include=['tltutor', 'tltutor.*']), include_package_data=True,
    python_requires=f">={c['min_python']}", install_requires=requirements,
    extras_require={'dev': c['dev_requirements'].split()},
    entry_points={'console_scripts': scripts, 'nbdev': [f"{c['lib_path']}={c['lib_path']}._modidx:d"]},
    keywords=c['keywords'].split(), zip_safe=False,
    classifiers=['Programming Language :: Python :: 3.11', 'License :: OSI Approved :: Apache Software License'],
)
