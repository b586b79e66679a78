"""Declaring components imports no torch: validation and the schema stay light."""

import subprocess
import sys


def test_descriptor_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import latentspec.components.modules, latentspec.components.ops\n"
        "import latentspec.components.terms\n"
        "from latentspec.components._kinds import MODULES, OPS, TERMS\n"
        "assert 'mlp' in MODULES and 'reparameterize' in OPS and 'gaussian_kl' in TERMS\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_component_documents_itself():
    from latentspec.components._kinds import MODULES, OPS, TERMS

    for registry in (MODULES, OPS, TERMS):
        for name, cls in registry.items():
            assert cls.summary(), f"{registry.kind} {name} has no docstring summary"
            for p in cls.params:
                p.json_schema()  # every declared type has a schema
