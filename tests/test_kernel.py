"""``layervenv kernel``: real kernels, started by real Jupyter clients.

jupyter_client, nbclient and nbformat run in the test Python; ipykernel comes from the
wheels dev/test fetched once (.cache/wheels-jupyter, or $LAYERVENV_TEST_JUPYTER_WHEELS):
installed into the layer by ``kernel install --install-ipykernel``, or into a simulated
stack (the stack provides it).  What the kernel reports (versions, sys.path, PYTHONPATH,
LD_LIBRARY_PATH) is compared with the stacks' own setup.sh, never with the tool's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import STACK_PYTHON
from helpers import clean_env, import_or_missing, missing, other_python, run_tool, shell_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layervenv.runtime.envchange import LeaveStacks, apply_to
from layervenv.runtime.kernel_launcher import STACK_LINE
from layervenv.services.simstack import (
    STACK_DISTS,
    Dist,
    SimStack,
    build_stack,
    sourced_environment,
    tree_digest,
)

jupyter_client = import_or_missing("jupyter_client")
nbformat = import_or_missing("nbformat")
nbclient = import_or_missing("nbclient")

from jupyter_client.blocking import BlockingKernelClient  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: a distribution only the other stack has: the kernel must not see it
OTHER_ONLY = Dist("otheronly", "3.0.0")
START_TIMEOUT = 90


def jupyter_wheels() -> Path:
    path = Path(os.environ.get("LAYERVENV_TEST_JUPYTER_WHEELS")
                or REPO / ".cache" / "wheels-jupyter")
    if not any(path.glob("ipykernel-*.whl")):
        missing(f"no ipykernel wheel in {path}", "dev/test fetches them")
    return path


# ---------------------------------------------------------------------------------------
# Fixtures: stacks and layers built once for the module
# ---------------------------------------------------------------------------------------

@dataclass
class World:
    home: Path
    base: dict[str, str]  # no stack set up
    stack: SimStack  # the layer's stack (A)
    stack_env: dict[str, str]
    other: SimStack  # another stack (B), with a distribution A lacks
    other_env: dict[str, str]
    layer: Path  # on A with --setup, hepnum upgraded, ipykernel installed by the tool
    name: str  # its kernel


def _pip_env(env: dict[str, str], *links: Path) -> dict[str, str]:
    return {**env, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": " ".join(str(p) for p in links)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    wheels = jupyter_wheels()
    tmp = tmp_path_factory.mktemp("kernel")
    home = tmp / "home"
    home.mkdir()
    base = clean_env(home)
    stack = build_stack(tmp / "LCG_A", STACK_PYTHON, name="LCG_A")
    other = build_stack(tmp / "LCG_B", STACK_PYTHON, name="LCG_B",
                        dists=(*STACK_DISTS, OTHER_ONLY))
    digests = {s.root: tree_digest(s.root) for s in (stack, other)}
    layer = tmp / "work"
    env = _pip_env(base, stack.wheelhouse, wheels)
    run_tool("create", str(layer), "--setup", f". {stack.setup_script}", env=env)
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q",
                    "hepnum==2.0.0"], env=env, check=True, capture_output=True)
    result = run_tool("kernel", "install", str(layer), "--install-ipykernel",
                      "--format", "json", env=env)
    data = json.loads(result.stdout)
    assert data["ipykernel"] == "layer" and data["ipykernel_installed"], data
    yield World(home=home, base=base, stack=stack, stack_env=stack.env(base), other=other,
                other_env=other.env(base), layer=layer, name=data["name"])
    for root, digest in digests.items():
        assert tree_digest(root) == digest, f"the stack {root} was modified"


@pytest.fixture(scope="module")
def stack_with_ipykernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimStack]:
    """A stack whose own site-packages has ipykernel (as LCG views and SWAN's do)."""
    wheels = jupyter_wheels()
    stack = build_stack(tmp_path_factory.mktemp("stackc") / "LCG_C", STACK_PYTHON,
                        name="LCG_C")
    subprocess.run([str(stack.python), "-m", "pip", "install", "-q", "--no-index",
                    "--find-links", str(wheels), "--target", str(stack.site_packages),
                    "--disable-pip-version-check", "ipykernel"],
                   check=True, capture_output=True, env=clean_env(stack.root.parent))
    digest = tree_digest(stack.root)
    yield stack
    assert tree_digest(stack.root) == digest, "the stack was modified"


def spec_manager(home: Path) -> KernelSpecManager:
    """Jupyter's own kernelspec lookup for a user whose HOME is ``home`` (only the default
    locations: what ``kernel install`` wrote must be where Jupyter looks)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        for name in ("JUPYTER_DATA_DIR", "XDG_DATA_HOME", "JUPYTER_PATH"):
            patch.delenv(name, raising=False)
        manager = KernelSpecManager()
        manager.kernel_dirs = list(manager.kernel_dirs)  # computed now, in this environment
        return manager


#: run in the kernel: what it sees, as JSON on one line
REPORT = r"""
import json, os, sys, importlib
out = {"executable": sys.executable, "path": sys.path}
for var in ("PYTHONPATH", "LD_LIBRARY_PATH", "PATH", "ROOTSYS", "SIMSTACK_NAME"):
    out[var] = os.environ.get(var)
for name in ("hepnum", "hepconf", "hepfit", "hepio", "otheronly"):
    try:
        module = importlib.import_module(name)
        out[name] = [module.__version__, module.__file__]
    except ImportError as error:
        out[name] = None
print(json.dumps(out))
"""


def ask(client: BlockingKernelClient, code: str) -> str:
    """Run ``code`` in the kernel; what it printed (fails on an error in the kernel)."""
    printed: list[str] = []
    errors: list[str] = []

    def hook(message: dict) -> None:
        kind, content = message["header"]["msg_type"], message["content"]
        if kind == "stream" and content["name"] == "stdout":
            printed.append(content["text"])
        elif kind == "execute_result":
            printed.append(content["data"]["text/plain"])
        elif kind == "error":
            errors.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok" and not errors, errors
    return "".join(printed).strip()


def report(client: BlockingKernelClient) -> dict:
    return json.loads(ask(client, REPORT).splitlines()[-1])


def under(path: str | None, root: Path) -> bool:
    return bool(path) and (path == str(root) or path.startswith(str(root) + "/"))


def entries(value: str | None) -> list[str]:
    return value.split(":") if value else []


def assert_layer_over_its_stack(seen: dict, world: World) -> None:
    """The layer wins, stack A's other packages import, nothing of stack B is seen; the
    expected values come from A's and B's setup.sh."""
    layer, a, b = world.layer, world.stack.root, world.other.root
    assert seen["executable"] == str(layer / "bin" / "python")
    assert seen["hepnum"][0] == "2.0.0" and under(seen["hepnum"][1], layer)
    for name in ("hepconf", "hepfit", "hepio"):
        assert seen[name] is not None and under(seen[name][1], a), (name, seen[name])
    assert seen["otheronly"] is None
    assert not [p for p in seen["path"] if under(p, b)], seen["path"]
    assert entries(seen["PYTHONPATH"]) == entries(world.stack_env["PYTHONPATH"])
    for var in ("LD_LIBRARY_PATH", "PATH"):
        assert not [e for e in entries(seen[var]) if under(e, b)], (var, seen[var])
        assert set(entries(world.stack_env[var])) - set(entries(world.base.get(var))) <= \
            set(entries(seen[var])), var
    assert entries(seen["PATH"])[0] == str(layer / "bin")
    assert seen["ROOTSYS"] == world.stack_env["ROOTSYS"]
    assert seen["SIMSTACK_NAME"] == "LCG_A"
    site = str(layer / "lib" / f"python{world.stack.short_version}" / "site-packages")
    assert seen["path"].index(site) < min(seen["path"].index(p) for p in seen["path"]
                                          if under(p, a))


def server_environments(world: World) -> dict[str, dict[str, str]]:
    """What a Jupyter server may run with: no stack, the layer's stack, another stack."""
    return {"no stack": world.base, "the layer's stack": world.stack_env,
            "another stack": world.other_env}


@pytest.fixture
def started(world: World):
    """Start the world's kernel through KernelManager from a given environment."""
    managers: list[KernelManager] = []

    def start(env: dict[str, str], name: str | None = None,
              stderr: Path | None = None) -> KernelManager:
        manager = KernelManager(kernel_name=name or world.name,
                                kernel_spec_manager=spec_manager(world.home))
        managers.append(manager)
        extra = {"stderr": open(stderr, "wb")} if stderr else {}  # noqa: SIM115
        manager.start_kernel(env=dict(env), **extra)
        return manager

    yield start
    for manager in managers:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def client_of(manager: KernelManager) -> BlockingKernelClient:
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=START_TIMEOUT)
    return client


# ---------------------------------------------------------------------------------------
# The kernel, from three server environments
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("server", ["no stack", "the layer's stack", "another stack"])
def test_kernel_sees_the_layer_over_its_stack(world: World, started, server: str) -> None:
    manager = started(server_environments(world)[server])
    client = client_of(manager)
    try:
        assert ask(client, "1+1") == "2"
        assert_layer_over_its_stack(report(client), world)
        # a restart starts the kernel again with the same launcher: the same view
        manager.restart_kernel(now=True)
        client.stop_channels()
        client = client_of(manager)
        assert_layer_over_its_stack(report(client), world)
    finally:
        client.stop_channels()


def test_the_default_location_is_where_jupyter_looks(world: World) -> None:
    specs = spec_manager(world.home).find_kernel_specs()
    assert Path(specs[world.name]) == world.home / ".local/share/jupyter/kernels" / world.name
    spec = json.loads((Path(specs[world.name]) / "kernel.json").read_text())
    assert os.path.isabs(spec["argv"][0]) and os.access(spec["argv"][0], os.X_OK)
    assert spec["display_name"] == "Python (layer work)"
    assert "env" not in spec


@pytest.mark.parametrize("variables", [
    {}, {"XDG_DATA_HOME": "xdg"}, {"JUPYTER_DATA_DIR": "jdd"},
    {"JUPYTER_DATA_DIR": "jdd", "XDG_DATA_HOME": "xdg"},
])
def test_user_location_is_jupyters(tmp_path: Path, variables: dict[str, str]) -> None:
    """Our user directory is jupyter_core's jupyter_data_dir() for the same environment."""
    from jupyter_core.paths import jupyter_data_dir

    from layervenv.model.kernelspec import user_data_dir

    env = {"HOME": str(tmp_path), **{k: str(tmp_path / v) for k, v in variables.items()}}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("JUPYTER_DATA_DIR", "XDG_DATA_HOME", "JUPYTER_PLATFORM_DIRS"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        assert str(user_data_dir(env)) == jupyter_data_dir()


def _wait_for_ready(client, timeout: float = 60) -> None:
    """``client.wait_for_ready``, whether the client is blocking or asynchronous."""
    from jupyter_core.utils import ensure_async, run_sync

    async def ready() -> None:
        await ensure_async(client.wait_for_ready(timeout=timeout))

    run_sync(ready)()


def test_notebook_runs_headless_with_nbclient(world: World) -> None:
    """A whole notebook through the kernel, then again after a restart of the kernel."""
    cells = [
        "import hepnum, hepconf, json\nhepnum.__version__",
        "print(json.dumps([hepnum.__version__, hepconf.__version__]))",
        REPORT,
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    manager = KernelManager(kernel_name=world.name, kernel_spec_manager=spec_manager(world.home))
    runner = nbclient.NotebookClient(notebook, km=manager, timeout=60)
    with runner.setup_kernel(env=dict(world.other_env)):
        for round_ in range(2):
            for index, cell in enumerate(notebook.cells):
                runner.execute_cell(cell, index)
            assert notebook.cells[0].outputs[0]["data"]["text/plain"] == "'2.0.0'"
            assert json.loads(notebook.cells[1].outputs[0]["text"]) == ["2.0.0", "0.9.0"]
            assert_layer_over_its_stack(json.loads(notebook.cells[2].outputs[0]["text"]), world)
            if round_ == 0:
                manager.restart_kernel(now=True)
                # IOPub of the new kernel process joins late (ZMQ's slow joiner); nbclient
                # waits for each cell's 'idle' there with no time limit, so a missed one
                # hangs: wait_for_ready returns once IOPub carries messages again.
                _wait_for_ready(runner.kc)
                for cell in notebook.cells:
                    cell.outputs = []


def test_kernel_json_argv_alone_starts_it(world: World, tmp_path: Path) -> None:
    """As VS Code does: argv from kernel.json (its env ignored), our own connection file."""
    from jupyter_client.connect import write_connection_file

    spec = json.loads((world.home / ".local/share/jupyter/kernels" / world.name /
                       "kernel.json").read_text())
    connection, _ = write_connection_file(str(tmp_path / "connection.json"))
    argv = [a.replace("{connection_file}", connection) for a in spec["argv"]]
    log = open(tmp_path / "kernel.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(argv, env=dict(world.other_env), stdout=log, stderr=log)
    client = BlockingKernelClient(connection_file=connection)
    client.load_connection_file()
    # no heartbeat: its 1 s deadline fails a kernel still starting on a busy machine, and
    # a client without a KernelManager takes a missed beat for a dead kernel
    client.start_channels(hb=False)
    try:
        try:
            client.wait_for_ready(timeout=START_TIMEOUT)
        except RuntimeError:
            raise AssertionError((tmp_path / "kernel.log").read_text()) from None
        assert ask(client, "6*7") == "42"
        assert_layer_over_its_stack(report(client), world)
        client.shutdown()
        assert process.wait(timeout=120) == 0  # a busy machine: ipykernel ends slowly
    finally:
        client.stop_channels()
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


# ---------------------------------------------------------------------------------------
# The stack provides ipykernel; ipykernel missing
# ---------------------------------------------------------------------------------------

def test_ipykernel_from_the_stack(stack_with_ipykernel: SimStack, tmp_path: Path) -> None:
    """A layer made without --setup, in a shell with the stack: its kernel takes ipykernel
    from the stack, started by a server with the stack set up (the layer has no copy)."""
    home = tmp_path / "home"
    home.mkdir()
    env = stack_with_ipykernel.env(clean_env(home))
    layer = tmp_path / "plain"
    run_tool("create", str(layer), env=env)
    result = run_tool("kernel", "install", str(layer), "--name", "from-stack", env=env)
    assert "ipykernel from the stack" in result.stdout
    assert "made without --setup" in result.stdout
    assert not list((layer / "lib").glob("python*/site-packages/ipykernel*"))
    manager = KernelManager(kernel_name="from-stack", kernel_spec_manager=spec_manager(home))
    manager.start_kernel(env=env)
    try:
        client = client_of(manager)
        assert ask(client, "import ipykernel, sys; print(ipykernel.__file__, sys.prefix)") \
            .split() == [str(stack_with_ipykernel.site_packages / "ipykernel" / "__init__.py"),
                         str(layer)]
        client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)


def test_missing_ipykernel_is_one_line_with_the_fix(stack: SimStack, stack_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    layer = tmp_path / "bare"
    run_tool("create", str(layer), "--setup", f". {stack.setup_script}", env=stack_env)
    result = run_tool("kernel", "install", str(layer), env=stack_env, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{layer}/bin/python -m pip install ipykernel" in result.stderr
    assert "--install-ipykernel" in result.stderr
    assert not (Path(stack_env["HOME"]) / ".local/share/jupyter/kernels").exists()


# ---------------------------------------------------------------------------------------
# Moved, removed and rebased layers
# ---------------------------------------------------------------------------------------

def _kernel_layer(stack: SimStack, tmp_path: Path, name: str) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = clean_env(home)
    layer = tmp_path / name
    run_tool("create", str(layer), "--setup", f". {stack.setup_script}", env=env)
    run_tool("kernel", "install", str(layer), env=env)
    return layer, env


def kernel_broken(layer: Path, env: dict[str, str]) -> tuple[int, list[dict]]:
    """``check LAYER``'s exit status and its kernel-broken problems."""
    checked = run_tool("check", str(layer), "--format", "json", env=env, check=False)
    problems = json.loads(checked.stdout)["problems"]
    return checked.returncode, [p for p in problems if p["kind"] == "kernel-broken"]


def _failed_start(home: Path, name: str, env: dict[str, str], log: Path) -> str:
    """Start kernel ``name`` with jupyter_client: it must die; its standard error."""
    manager = KernelManager(kernel_name=name, kernel_spec_manager=spec_manager(home))
    with open(log, "wb") as stderr:
        manager.start_kernel(env=env, stderr=stderr)
    try:
        deadline = time.monotonic() + 30
        while manager.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not manager.is_alive()
    finally:
        manager.shutdown_kernel(now=True)
    return log.read_text()


@pytest.mark.parametrize("how", ["removed", "moved"])
def test_gone_layer_fails_in_one_line_and_check_says_so(
        stack_with_ipykernel: SimStack, tmp_path: Path, how: str) -> None:
    layer, env = _kernel_layer(stack_with_ipykernel, tmp_path, "gone")
    other = tmp_path / "other"
    run_tool("create", str(other), "--setup", f". {stack_with_ipykernel.setup_script}",
             env=env)
    moved = tmp_path / "moved-here"
    if how == "removed":
        shutil.rmtree(layer)
    else:
        layer.rename(moved)
    stderr = _failed_start(Path(env["HOME"]), "gone", env, tmp_path / "kernel.log")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert f"its layer {layer} is not there any more" in stderr
    listed = json.loads(run_tool("kernel", "list", "--format", "json", env=env).stdout)
    assert [(k["name"], k["status"]) for k in listed["kernels"]] == [("gone", "gone")]
    status, problems = kernel_broken(moved if how == "moved" else other, env)
    assert len(problems) == 1 and "'gone'" in problems[0]["message"]
    if how == "moved":  # the layer checked is the one the kernel started: an error
        assert status == 1 and problems[0]["severity"] == "error"
    else:  # another layer's kernel: a warning (the status is the other problems')
        assert problems[0]["severity"] == "warning"
        assert "layervenv kernel remove gone" in problems[0]["message"]


def test_rebase_makes_the_launcher_again(stack_with_ipykernel: SimStack, tmp_path: Path
                                         ) -> None:
    """Rebased onto another Python (without ipykernel): the launcher is made again for it;
    check says the kernel lacks ipykernel; an outdated launcher is reported as such."""
    python = other_python()
    if python is None:
        pytest.skip("no interpreter of another minor version")
    layer, env = _kernel_layer(stack_with_ipykernel, tmp_path, "reb")
    launcher = layer / "bin" / "layervenv-kernel"
    before = launcher.read_text()
    assert kernel_broken(layer, env)[1] == []
    run_tool("rebase", str(layer), "--python", str(python), env=env)
    after = launcher.read_text()
    version = subprocess.run([str(python), "-c", "import platform; print("
                              "platform.python_version())"], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert f"{STACK_LINE}{version} {python} " in after and after != before
    assert f"exec '{layer}/bin/python' -m ipykernel_launcher" in after
    status, kernel = kernel_broken(layer, env)
    assert status == 1 and len(kernel) == 1
    assert "ipykernel is not importable" in kernel[0]["message"]
    launcher.write_text(before)  # as a layervenv that did not make it again would leave it
    kernel = kernel_broken(layer, env)[1]
    short = ".".join(version.split(".")[:2])
    assert len(kernel) == 1 and "was made for Python 3." in kernel[0]["message"]
    assert f"now on Python {short}" in kernel[0]["message"]


# ---------------------------------------------------------------------------------------
# install / list / remove
# ---------------------------------------------------------------------------------------

def test_install_list_remove(stack_with_ipykernel: SimStack, tmp_path: Path) -> None:
    layer, env = _kernel_layer(stack_with_ipykernel, tmp_path, "My Layer!")
    home = Path(env["HOME"])
    kernels = home / ".local/share/jupyter/kernels"
    assert [p.name for p in kernels.iterdir()] == ["my-layer"]
    again = json.loads(run_tool("kernel", "install", str(layer), "--format", "json",
                                env=env).stdout)
    assert again["replaced"] and again["name"] == "my-layer"
    # not ours: refused, untouched
    foreign = kernels / "python3"
    foreign.mkdir()
    (foreign / "kernel.json").write_text('{"argv": ["python"], "display_name": "P"}')
    refused = run_tool("kernel", "install", str(layer), "--name", "python3", env=env,
                       check=False)
    assert refused.returncode == 2 and "not a layervenv kernel" in refused.stderr
    assert (foreign / "kernel.json").read_text() == '{"argv": ["python"], "display_name": "P"}'
    bad = run_tool("kernel", "install", str(layer), "--name", "Bad Name", env=env, check=False)
    assert bad.returncode == 2 and "cannot name a kernel" in bad.stderr
    # --prefix and --sys-prefix: where Jupyter looks with JUPYTER_PATH / from the layer
    run_tool("kernel", "install", str(layer), "--prefix", str(tmp_path / "pfx"), env=env)
    run_tool("kernel", "install", str(layer), "--sys-prefix", "--name", "inside", env=env)
    assert (tmp_path / "pfx/share/jupyter/kernels/my-layer/kernel.json").is_file()
    assert (layer / "share/jupyter/kernels/inside/kernel.json").is_file()
    listed = json.loads(run_tool("kernel", "list", "--format", "json", env={
        **env, "JUPYTER_PATH": str(tmp_path / "pfx/share/jupyter")}).stdout)["kernels"]
    assert [(k["name"], k["status"], k["path"]) for k in listed] == [
        ("my-layer", "ok", str(tmp_path / "pfx/share/jupyter/kernels/my-layer")),
        ("my-layer", "ok", str(kernels / "my-layer"))]
    specs = spec_manager(home).find_kernel_specs()
    assert {"my-layer", "python3"} <= set(specs)
    removed = run_tool("kernel", "remove", "my-layer", env=env)
    assert "removed kernel 'my-layer'" in removed.stdout
    specs = spec_manager(home).find_kernel_specs()
    assert "python3" in specs and "my-layer" not in specs
    assert (layer / "bin" / "layervenv-kernel").is_file()  # the layer is untouched
    missing = run_tool("kernel", "remove", "my-layer", env=env, check=False)
    assert missing.returncode == 2 and "no layervenv kernel named" in missing.stderr


@contextlib.contextmanager
def _read_only(directory: Path) -> Iterator[str]:
    """``directory`` unwritable, also for root (who ignores its mode): immutable.  Yields
    "" when it is, else why not (root where ``chattr +i`` fails): the caller leaves that
    one case out and says so after the others, never dropping them all."""
    directory.mkdir()
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True)
        if made.returncode != 0:
            yield f"root cannot make a read-only directory here: {made.stderr!r}"
            return
    else:
        directory.chmod(0o555)
    try:
        yield ""
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(0o755)


def test_a_place_or_name_that_cannot_be_is_one_line_with_nothing_written(
        stack_with_ipykernel: SimStack, tmp_path: Path) -> None:
    """Each: exit 2, one line naming the cause, and nothing written anywhere (not the
    layer's launcher, not a directory under the prefix, not the user's kernels)."""
    home = tmp_path / "home"
    home.mkdir()
    env = stack_with_ipykernel.env(clean_env(home))
    layer = tmp_path / "layer"
    run_tool("create", str(layer), env=env)
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    cases = {
        "a file": (["--prefix", str(a_file)], f"{a_file} is not a directory"),
        "under a file": (["--prefix", str(a_file / "sub")], f"{a_file} is not a directory"),
        "/sys": (["--prefix", "/sys"], "cannot write the kernelspec in /sys/share/jupyter/"
                                       "kernels: Operation not permitted"),
        "read-only": (["--prefix", str(tmp_path / "ro")], "cannot write the kernelspec in "
                                                         f"{tmp_path / 'ro'}/share/jupyter"),
        "empty": (["--prefix", ""], "--prefix needs a directory"),
        "256 long": (["--name", "k" * 256], "at most 255 characters; this one has 256"),
        ".": (["--name", "."], "'.' cannot name a kernel"),
        "..": (["--name", ".."], "'..' cannot name a kernel"),
        "newline": (["--name", "k\n"], "'k\\n' cannot name a kernel"),
        "empty name": (["--name", ""], "cannot name a kernel"),  # was the default name
    }
    before = tree_digest(tmp_path)
    with _read_only(tmp_path / "ro") as not_read_only:
        if not_read_only:
            del cases["read-only"]
        before = tree_digest(tmp_path)
        for case, (args, said) in cases.items():
            result = run_tool("kernel", "install", str(layer), *args, env=env, cwd=tmp_path,
                              check=False)
            assert result.returncode == 2, (case, result.stderr)
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, \
                (case, result.stderr)
            assert result.stderr.startswith("layervenv: error: ") and said in result.stderr, \
                (case, result.stderr)
            assert tree_digest(tmp_path) == before, case
    assert not (layer / "bin" / "layervenv-kernel").exists()
    # the longest name there may be is written (its staging directory's name is cut)
    longest = "k" * 255
    run_tool("kernel", "install", str(layer), "--name", longest, "--prefix",
             str(tmp_path / "pfx"), env=env)
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "pfx/share/jupyter/kernels")])
    assert longest in specs.find_kernel_specs()
    if not_read_only:  # the other cases held; this one could not be tried here
        missing(not_read_only, "run as a user, or where chattr +i works")


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(
    st.text(alphabet="abcXYZ019._-\n/ é", max_size=8),
    st.sampled_from([".", "..", "...", "-", "a\n", "\na", "a/b"]),
    st.integers(250, 260).map(lambda n: "k" * n)))
def test_a_kernel_name_is_taken_exactly_when_jupyter_and_the_file_system_take_it(
        tmp_path: Path, name: str) -> None:
    """jupyter_client's own rule (``_is_valid_kernel_name``, as ``jupyter kernelspec
    install`` applies it after lowercasing) and a real directory of that name as the
    judges: a name is taken if and only if Jupyter takes it unchanged (lowercase), and
    it makes a directory of its own in the kernels directory."""
    from jupyter_client.kernelspec import _is_valid_kernel_name

    from layervenv.infra.errors import UserError
    from layervenv.model.kernelspec import check_name

    try:
        check_name(name)
        taken = True
    except UserError as error:
        assert "\n" not in str(error)
        taken = False
    kernels = tmp_path / "kernels"
    kernels.mkdir(exist_ok=True)
    try:
        os.mkdir(kernels / name)
        own = (kernels / name).parent == kernels and (kernels / name).name == name
        os.rmdir(kernels / name)
    except OSError:
        own = False
    jupyter = bool(_is_valid_kernel_name(name)) and name == name.lower() and "\n" not in name
    assert taken == (jupyter and own), (name, jupyter, own)


# ---------------------------------------------------------------------------------------
# The launcher run for real: the environment it gives the kernel, from any server's
# ---------------------------------------------------------------------------------------

#: the layer's stand-in for ipykernel: what the launcher ends in prints its environment
DUMP_ENVIRONMENT = "import json, os\nprint(json.dumps(dict(os.environ)))\n"
#: what leaving other stacks and re-establishing the layer's decide
LAUNCHER_VARIABLES = ("PYTHONPATH", "LD_LIBRARY_PATH", "PATH", "VIRTUAL_ENV", "PYTHONHOME")


@dataclass
class LauncherWorld:
    base: dict[str, str]  # no stack set up
    stack_env: dict[str, str]  # the layer's stack (A), from its setup.sh
    others: dict[str, tuple[Path, dict[str, str]]]  # another stack: its prefix, its env
    layer: Path  # on A with --setup; its launcher written by kernel install


def _handmade_stack(prefix: Path, packages: str) -> Path:
    """Another stack at ``prefix``, its packages in ``prefix/packages`` (Debian's layout:
    ``lib/python3/dist-packages``), its tools and libraries beside them; its setup.sh."""
    (prefix / packages / "otheronly").mkdir(parents=True)
    (prefix / packages / "otheronly" / "__init__.py").write_text("", encoding="utf-8")
    for directory in ("bin", "lib/x86_64-linux-gnu"):
        (prefix / directory).mkdir(parents=True, exist_ok=True)
    setup = prefix / "setup.sh"
    setup.write_text(
        f"export PATH='{prefix}/bin':\"$PATH\"\n"
        f"export LD_LIBRARY_PATH='{prefix}/lib/x86_64-linux-gnu'"
        "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n"
        f"export PYTHONPATH='{prefix / packages}'${{PYTHONPATH:+:$PYTHONPATH}}\n",
        encoding="utf-8")
    return setup


@pytest.fixture(scope="module")
def launcher_world(tmp_path_factory: pytest.TempPathFactory) -> LauncherWorld:
    tmp = tmp_path_factory.mktemp("launcher")
    home = tmp / "home"
    home.mkdir()
    base = clean_env(home)
    stack = build_stack(tmp / "LCG_A", STACK_PYTHON, name="LCG_A")
    layer = tmp / "work"
    run_tool("create", str(layer), "--without-pip", "--setup", f". {stack.setup_script}",
             env=base)
    site = layer / "lib" / f"python{stack.short_version}" / "site-packages"
    (site / "ipykernel_launcher.py").write_text(DUMP_ENVIRONMENT, encoding="utf-8")
    run_tool("kernel", "install", str(layer), env=base)
    others = {}
    for kind, packages in (("site-packages", "lib/python3.11/site-packages"),
                           ("dist-packages", "lib/python3/dist-packages")):
        prefix = tmp / "opt" / kind
        others[kind] = (prefix, sourced_environment(_handmade_stack(prefix, packages), base))
    return LauncherWorld(base=base, stack_env=stack.env(base), others=others, layer=layer)


def _launched(world: LauncherWorld, shell: str, env: dict[str, str]) -> dict[str, str]:
    """The environment the real launcher, run by ``shell``, gives the kernel."""
    launcher = world.layer / "bin" / "layervenv-kernel"
    argv = [str(launcher)] if shell == "#!" else [shell_path(shell), str(launcher)]
    out = subprocess.run([*argv, "-f", "connection.json"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def _run_environment(world: LauncherWorld, env: dict[str, str]) -> dict[str, str]:
    """The environment ``layervenv run`` gives a command, started in ``env``."""
    out = run_tool("run", str(world.layer), "--", "python", "-c", DUMP_ENVIRONMENT,
                   env=env).stdout
    return json.loads(out.splitlines()[-1])


def _pick(env: dict[str, str]) -> dict[str, str | None]:
    return {name: env.get(name) for name in LAUNCHER_VARIABLES}


@pytest.mark.parametrize("shell", ["#!", "dash", "bash"])
@pytest.mark.parametrize("server", ["no stack", "the layer's stack", "site-packages",
                                    "dist-packages"])
def test_launcher_gives_the_kernel_what_run_gives_a_command(
        launcher_world: LauncherWorld, shell: str, server: str) -> None:
    """Whatever stack the server has, the kernel gets what ``layervenv run`` gives a command
    started where no stack is set up; another stack -- its packages in ``site-packages``
    or, Debian style, in ``dist-packages`` -- leaves no entry (its PATH, its libraries)."""
    world = launcher_world
    envs = {"no stack": world.base, "the layer's stack": world.stack_env,
            **{kind: env for kind, (_, env) in world.others.items()}}
    seen = _launched(world, shell, envs[server])
    assert _pick(seen) == _pick(_run_environment(world, world.base))
    if server in world.others:
        prefix = str(world.others[server][0])
        for name in ("PYTHONPATH", "LD_LIBRARY_PATH", "PATH"):
            assert not [e for e in entries(seen.get(name)) if e.startswith(prefix)], name


@pytest.mark.parametrize("kind", ["site-packages", "dist-packages"])
def test_run_and_activation_refuse_the_other_stack_the_launcher_leaves(
        launcher_world: LauncherWorld, kind: str) -> None:
    """The same rule finds the other stack everywhere: ``run`` and ``bin/activate`` (a real
    dash) refuse it in one line, as the launcher leaves it (test above)."""
    env = launcher_world.others[kind][1]
    ran = run_tool("run", str(launcher_world.layer), "--", "true", env=env, check=False)
    assert ran.returncode != 0 and "another stack is set up" in ran.stderr, ran.stderr
    activate = launcher_world.layer / "bin" / "activate"
    sourced = subprocess.run([shell_path("dash"), "-c", f". '{activate}'"], env=env,
                             capture_output=True, text=True, check=False)
    assert sourced.returncode != 0 and "another stack is set up" in sourced.stderr, \
        sourced.stderr


def test_leaving_other_stacks_examples() -> None:
    """The rule on a few hand-checked cases (independent of the implementation)."""
    change = LeaveStacks(own=("/A/lib/python3.11/site-packages",), keep=("/B/lib/keep",))
    env = apply_to((change,), {
        "PYTHONPATH": "/B/lib/python3.11/site-packages:/A/lib/python3.11/site-packages:/mine",
        "LD_LIBRARY_PATH": "/B/lib:/B/lib/keep:/Bx/lib:/usr/lib:/A/lib",
        "PATH": "/B/bin:/usr/bin:/B",
    })
    assert env == {"PYTHONPATH": "/A/lib/python3.11/site-packages",
                   "LD_LIBRARY_PATH": "/B/lib/keep:/Bx/lib:/usr/lib:/A/lib",
                   "PATH": "/usr/bin"}
    system = apply_to((change,), {"PYTHONPATH": "/usr/local/lib/python3.11/site-packages",
                                  "PATH": "/usr/local/bin:/usr/bin"})
    assert system == {"PATH": "/usr/local/bin:/usr/bin"}
    debian = apply_to((change,), {"PYTHONPATH": "/D/lib/python3/dist-packages",
                                  "LD_LIBRARY_PATH": "/D/lib:/usr/lib", "PATH": "/D/bin:/bin"})
    assert debian == {"LD_LIBRARY_PATH": "/usr/lib", "PATH": "/bin"}


def test_launcher_parses_in_every_posix_shell(world: World) -> None:
    """The launcher is run by /bin/sh, which is dash, bash, ksh or zsh somewhere."""
    launcher = world.layer / "bin" / "layervenv-kernel"
    assert launcher.read_text().startswith("#!/bin/sh\n")
    for shell in ("dash", "bash", "ksh", "zsh"):
        checked = subprocess.run([shell_path(shell), "-n", str(launcher)],
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0 and not checked.stderr, (shell, checked.stderr)
