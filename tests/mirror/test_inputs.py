"""mirror.inputs: what the command line and the service read as "what to mirror"."""

from __future__ import annotations

from airsync.goproxy.modpath import ModuleVersion
from airsync.mirror.inputs import Inputs, parse_input, read_inputs

GOSUM = b"example.com/a v1.0.0 h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n" \
        b"example.com/a v1.0.0/go.mod h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


def test_each_kind_of_file_adds_to_its_list():
    inputs = Inputs()
    parse_input(inputs, "go_sum", GOSUM, "go.sum")
    parse_input(inputs, "go_mod", b"module m\n\nrequire example.com/b v1.2.0\n", "go.mod")
    parse_input(inputs, "modules", b"# pinned by hand\nexample.com/c@v0.1.0  # trailing comment\n\n", "list.txt")
    assert len(inputs.sum_lines) == 2
    assert [r.module.path for r in inputs.requires] == ["example.com/b"]
    assert inputs.modules == [(ModuleVersion("example.com/c", "v0.1.0"), "list.txt:2")]
    assert inputs.problems == []


def test_problems_are_collected_with_file_and_line_and_the_rest_still_parses(tmp_path):
    good = tmp_path / "list.txt"
    good.write_text("example.com/ok@v1.0.0\nnot a module\n")
    inputs = read_inputs([], [], [str(good), str(tmp_path / "missing.txt")], ["example.com/x@v1.0.0", "bad@"])
    assert [mv.path for mv, _ in inputs.modules] == ["example.com/ok", "example.com/x"]
    where = [str(p).split(": ")[0] for p in inputs.problems]
    assert where == [f"{good}:2", str(tmp_path / "missing.txt"), "--module"]
    assert "cannot read" in str(inputs.problems[1])
