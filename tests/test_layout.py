"""The dependency rules of docs/ARCHITECTURE.md, checked on the source (imports anywhere in a module)."""
import ast
import io
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEVICE_LIBRARIES = {"pygame", "gpiozero", "picamera2", "escpos", "tinydb", "face_recognition", "dlib", "cv2"}


def imported(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", ["states.py", "states_privacy.py", "visit.py", "screen_samples.py", "machine_events.py", "views.py", "tickets.py", "consent.py",
                                    "index.py", "seams.py", "text.py"])
def test_pure_logic_imports_no_device_library(module):
    assert not imported(REPO / "kiosk" / module) & DEVICE_LIBRARIES


@pytest.mark.parametrize("path", sorted((REPO / "hardware").glob("*.py")), ids=lambda p: p.name)
def test_hardware_never_imports_the_application(path):
    assert "kiosk" not in imported(path)


def test_only_the_composition_root_imports_real_device_classes():
    """Replay may use the file camera; the real devices are built in kiosk/app.py alone."""
    devices = {"EscposPrinter", "SimulatedPrinter", "Picamera2Camera", "OpenCvCamera", "GpioButtons"}
    for path in sorted((REPO / "kiosk").glob("*.py")):
        if path.name == "app.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hardware"):
                named = {a.name for a in node.names} & devices
                assert not named, f"{path.name} imports {named}"


# ------------------------------------------------------------------------------------ the house stays easy to change
SOURCES = sorted([*(REPO / "kiosk").rglob("*.py"), *(REPO / "hardware").rglob("*.py")])
MAX_LINES = 500
#: Modules allowed past MAX_LINES, each with the reason. Shrink this list; never grow it without one.
LONG_MODULES: set[str] = set()
#: The command-line layer: the only modules that print (or write to sys.stdout / sys.stderr) at all.
CLI_LAYER = {"kiosk/__main__.py", "kiosk/cli_store.py", "kiosk/calibrate.py", "kiosk/doctor.py",
             "kiosk/replay.py", "kiosk/cli_privacy.py", "kiosk/cli_ratings.py", "kiosk/cli_service.py"}
#: Where the parts meet: parameters and fields here are typed with kiosk.seams Protocols, never Any.
SEAM_MODULES = ["kiosk/app.py", "kiosk/printing.py"]


def rel(path):
    return path.relative_to(REPO).as_posix()


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_no_module_is_longer_than_the_limit(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES or rel(path) in LONG_MODULES, f"{rel(path)}: {lines} lines; split it by job"


def test_the_long_module_list_only_holds_long_modules():
    for name in LONG_MODULES:
        assert len((REPO / name).read_text(encoding="utf-8").splitlines()) > MAX_LINES, f"{name} fits now: unlist it"


def _outputs(tree):
    """Line numbers of print() calls and uses of sys.stdout / sys.stderr, outside functions named main."""
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "main":   # a module's own `python -m` entry
            allowed |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(node.lineno)
        elif (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
              and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            found.append(node.lineno)
    return [n for n in found if n not in allowed]


@pytest.mark.parametrize("path", [p for p in SOURCES if rel(p) not in CLI_LAYER], ids=rel)
def test_only_the_command_line_layer_prints(path):
    lines = _outputs(ast.parse(path.read_text(encoding="utf-8")))
    assert not lines, f"{rel(path)} prints on lines {lines}: return values or log; the CLI layer prints"


def test_the_print_check_sees_prints():
    tree = ast.parse("import sys\ndef f():\n    print('x')\n    sys.stderr.write('y')\ndef main():\n    print(1)\n")
    assert _outputs(tree) == [3, 4]


def _any_annotations(tree):
    """(line, name) of each parameter or annotated field typed as Any (or a union with Any)."""
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            targets = [(a.arg, a.annotation) for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, (ast.Name, ast.Attribute)):
            targets = [(ast.unparse(node.target), node.annotation)]
        for name, annotation in targets:
            if annotation is not None and any(isinstance(n, ast.Name) and n.id == "Any" for n in ast.walk(annotation)):
                found.append((node.lineno, name))
    return sorted(found)


@pytest.mark.parametrize("name", SEAM_MODULES)
def test_the_seams_are_protocols_not_any(name):
    tree = ast.parse((REPO / name).read_text(encoding="utf-8"))
    assert not _any_annotations(tree), f"{name}: typed Any at {_any_annotations(tree)}; use a kiosk.seams Protocol"
    assert "kiosk.seams" in {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_the_any_check_sees_any():
    tree = ast.parse("class K:\n    store: Any\ndef f(printer: Any | None, n: int) -> Any: ...\n")
    assert _any_annotations(tree) == [(2, "store"), (3, "printer")]


# Repeated code: 6 consecutive code lines (not blank, comment, docstring or import; whitespace-normalised) that
# appear in two modules. The same check as the `duplicates` tool's exact matches, in a few lines of Python.
WINDOW = 6


def _code_lines(text):
    """(line number, normalised text) of each code line."""
    tree = ast.parse(text)
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            skip |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and \
                ast.get_docstring(node, clean=False) is not None:
            doc = node.body[0]
            skip |= set(range(doc.lineno, (doc.end_lineno or doc.lineno) + 1))
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.start[1]
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        code = " ".join(line[:comments.get(number, len(line))].split())
        if code and number not in skip:
            out.append((number, code))
    return out


def repeated_blocks(texts):
    """[(first place, second place)] of windows of WINDOW code lines found in two different modules."""
    first_seen = {}
    pairs = {}
    for name, text in texts.items():
        lines = _code_lines(text)
        for i in range(len(lines) - WINDOW + 1):
            key = tuple(code for _, code in lines[i:i + WINDOW])
            place = (name, lines[i][0])
            seen = first_seen.setdefault(key, place)
            if seen[0] != name:
                pairs.setdefault((seen[0], name), (seen, place))   # one report per pair of modules
    return list(pairs.values())


def test_no_block_of_code_is_repeated_across_modules():
    texts = {rel(p): p.read_text(encoding="utf-8") for p in SOURCES}
    repeats = repeated_blocks(texts)
    assert not repeats, "\n".join(f"{a}:{la} repeats {b}:{lb}" for (a, la), (b, lb) in repeats)


def test_the_repeat_check_sees_a_repeat_and_ignores_comments_and_imports():
    body = "".join(f"    x{i} = f({i})  # note {i}\n" for i in range(6))
    one = f"import os\n\ndef a():\n{body}"
    two = f"from x import y\n\n\ndef b():\n    '''doc'''\n{body.replace('# note', '# other')}"
    assert repeated_blocks({"one.py": one, "two.py": two}) == [(("one.py", 4), ("two.py", 6))]
    assert repeated_blocks({"one.py": one, "two.py": two.replace("x5", "z5")}) == []


# The loop and replay react to what the state machine says (kiosk.machine_events), never to its insides.
def _machine_insides(tree):
    """Lines that compare with a phase's name as a string, or reach into the machine's visit or counters."""
    from kiosk.machine_events import Phase

    names = {phase.value for phase in Phase}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value in names
                                                 for c in [node.left, *node.comparators]):
            found.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in {"visit", "person", "_outbox", "_deadline",
                                                               "outcomes", "visits_ended", "last_outcome"}:
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("name", ["kiosk/loop.py", "kiosk/replay.py"])
def test_the_loop_and_replay_watch_the_machines_events_not_its_insides(name):
    lines = _machine_insides(ast.parse((REPO / name).read_text(encoding="utf-8")))
    assert not lines, f"{name} reads the machine's insides on lines {lines}: react to its events"


def test_the_insides_check_sees_insides():
    tree = ast.parse("if m.phase == 'consent':\n    pass\nx = m.visit.texts\ny = m.phase is Phase.IDLE\n")
    assert _machine_insides(tree) == [1, 3]
