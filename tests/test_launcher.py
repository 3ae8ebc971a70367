"""The tests' process launcher (`tests/launcher.py`) gives what `subprocess` gives: exit codes,
deaths by signal, streams, environment, working directory, arguments, and a TensorFlow that has
not started yet."""
import os
import signal
import subprocess
import sys

import launcher

CODE = [sys.executable, "-c"]


def test_exit_codes_streams_and_arguments_are_the_childs(tmp_path):
  script = ("import os, sys; print('out', sys.argv[1:]); print('err', file=sys.stderr); "
            "print(os.getcwd()); print(os.environ['LAUNCHED']); print(sys.stdin.read()); "
            "sys.exit(3)")
  result = launcher.run(CODE + [script, "a", "b"], capture_output=True, text=True,
                        cwd=tmp_path, env=dict(os.environ, LAUNCHED="yes"), input="typed")
  assert result.returncode == 3
  assert result.stdout.splitlines() == ["out ['a', 'b']", str(tmp_path), "yes", "typed"]
  assert result.stderr == "err\n"
  without_home = {k: v for k, v in os.environ.items() if k != "HOME"}
  seen = launcher.run(CODE + ["import os; print(sorted(os.environ))"], capture_output=True,
                      text=True, env=without_home).stdout
  assert "LAUNCHED" not in seen and "HOME" not in seen and "PATH" in seen


def test_an_uncaught_exception_and_a_self_kill_are_reported_as_by_subprocess():
  failed = launcher.run(CODE + ["raise ValueError('boom')"], capture_output=True, text=True)
  assert failed.returncode == 1 and "ValueError: boom" in failed.stderr
  killed = launcher.run(CODE + ["import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                        capture_output=True, text=True)
  assert killed.returncode == -signal.SIGKILL


def test_a_module_and_a_script_run_as_main_with_the_pythonpath_given(tmp_path):
  (tmp_path / "mine.py").write_text("import sys\nif __name__ == '__main__':\n"
                                    "  print('main', sys.argv[1:])\n")
  env = dict(os.environ, PYTHONPATH=str(tmp_path))
  module = launcher.run([sys.executable, "-m", "mine", "x"], capture_output=True, text=True,
                        env=env)
  assert module.stdout == "main ['x']\n", module.stderr
  script = launcher.run([sys.executable, str(tmp_path / "mine.py"), "y"], capture_output=True,
                        text=True)
  assert script.stdout == "main ['y']\n", script.stderr
  missing = launcher.run([sys.executable, "-m", "mine"], capture_output=True, text=True)
  assert missing.returncode == 1 and "No module named mine" in missing.stderr


def test_a_started_child_streams_its_output_and_stops_on_a_signal():
  child = launcher.start(CODE + ["import time\nprint('up', flush=True)\ntime.sleep(60)"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert isinstance(child, launcher.Process) and child.pid != os.getpid()
  assert child.stdout.readline() == "up\n"
  assert child.poll() is None
  meanwhile = launcher.run(CODE + ["print('too')"], capture_output=True, text=True)
  assert meanwhile.stdout == "too\n" and child.poll() is None  # a new interpreter ran it
  child.send_signal(signal.SIGINT)
  _, err = child.communicate(timeout=30)
  assert child.returncode == -signal.SIGINT and "KeyboardInterrupt" in err


def test_tensorflow_is_imported_but_not_started_in_the_child():
  probe = ("import sys; assert 'tensorflow' in sys.modules\n"
           "from lth_tf.compat import tf\n"
           "tf.config.threading.set_intra_op_parallelism_threads(1)\n"  # refused once started
           "tf.config.set_logical_device_configuration(tf.config.list_physical_devices('CPU')[0],"
           " [tf.config.LogicalDeviceConfiguration()] * 2)\n"
           "print(len(tf.config.list_logical_devices('CPU')), "
           "tf.config.threading.get_intra_op_parallelism_threads())")
  result = launcher.run(CODE + [probe], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["2", "1"]


def test_an_environment_read_at_import_is_given_a_new_interpreter():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="1")
  started = launcher.start(CODE + ["print('x')"], stdout=subprocess.PIPE, env=env, text=True)
  assert isinstance(started, subprocess.Popen)
  assert started.communicate()[0] == "x\n"


def test_a_child_that_writes_more_than_a_pipe_holds_is_read_while_it_runs():
  child = launcher.start(CODE + ["import sys; sys.stdout.write('x' * 300000)"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  out, err = child.communicate(timeout=60)
  assert child.returncode == 0 and len(out) == 300000 and err == ""


def test_a_new_interpreter_is_given_the_input_too():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="1")
  result = launcher.run(CODE + ["import sys; print(sys.stdin.read())"], capture_output=True,
                        text=True, env=env, input="typed")
  assert result.stdout == "typed\n"
