"""Only what setup.cfg cannot say: the repo's `plugins/` folder installs as `cliproxy_mgmt.providers`.

The built-in providers stay in `plugins/` (one folder per provider) but are distributed under
the core's own name, so an installed cliproxy-mgmt puts nothing but `cliproxy_mgmt` into
site-packages. Provider folders are found here, so a new one needs no packaging edit.
"""

from setuptools import find_packages, setup

PROVIDERS = "cliproxy_mgmt.providers"

setup(
    package_dir={PROVIDERS: "plugins"},
    packages=find_packages(include=["cliproxy_mgmt", "cliproxy_mgmt.*"])
    + [PROVIDERS] + [f"{PROVIDERS}.{name}" for name in find_packages("plugins")],
)
