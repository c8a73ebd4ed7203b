"""`python -m experiments.main` with the callbacks of `fault_injection` registered.

Same flags and behaviour as `experiments.main`; gin bindings may also name
``@CrashAfterBatches()`` and ``@InjectNaNAfterBatches()``. Run it as a script from the
repository root with the repository on PYTHONPATH (see `fixtures_train.run_main`).
"""

import fault_injection
from absl import app

from experiments import main

if __name__ == "__main__":
    fault_injection.register()
    app.run(main.main)
