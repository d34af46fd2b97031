from core import threads

import os
import subprocess
import sys


def test_default_threads_is_capped_at_four():
    assert threads.default_threads(64) == 4
    assert threads.default_threads(2) == 2
    assert threads.default_threads(1) == 1


def test_configure_sets_every_thread_variable():
    settings = threads.configure(3)
    for name in threads.THREAD_ENV_VARS:
        assert os.environ[name] == "3"
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert settings.threads == 3
    threads.configure()  # restore the default for other tests


def test_importing_core_caps_torch_from_ert_threads():
    code = ("import core, torch; from core import threads; s = threads.apply_torch(); "
            "print(torch.get_num_threads(), s.interop_threads)")
    env = {**os.environ, "ERT_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "1"]


def test_bad_ert_threads_value_falls_back_to_default(monkeypatch, capsys):
    monkeypatch.setenv("ERT_THREADS", "lots")
    assert threads.requested_threads() == threads.default_threads()
    assert "not a positive integer" in capsys.readouterr().err
