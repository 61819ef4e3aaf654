from airsync.goproxy import gomod, gosum, wants
from airsync.goproxy.modpath import ModuleVersion

H1 = "h1:" + "A" * 43 + "="
H2 = "h1:" + "B" * 42 + "E="


def sums(text: str):
    lines, problems = gosum.parse_gosum(text.encode(), "go.sum")
    assert not problems
    return lines


def test_zip_line_needs_zip_and_gomod_only_line_does_not():
    plan = wants.plan(sums(f"example.com/a v1.0.0 {H1}\nexample.com/a v1.0.0/go.mod {H2}\nexample.com/b v1.0.0/go.mod {H2}\n"), [], [])
    a, b = plan
    assert [e for e, _ in a.files()] == ["mod", "info", "zip"] and a.pinned
    assert a.zip_h1 == {H1} and a.mod_h1 == {H2}
    assert [e for e, _ in b.files()] == ["mod", "info"] and b.pinned


def test_duplicates_merge_and_all_hashes_are_acceptable():
    text = f"example.com/a v1.0.0 {H1}\nexample.com/a v1.0.0 {H1}\nexample.com/a v1.0.0 {H2}\nexample.com/a v1.0.0/go.mod {H2}\n"
    (a,) = wants.plan(sums(text) + sums(text), [], [])
    assert a.zip_h1 == {H1, H2}
    assert a.origin == "go.sum:1"


def test_require_without_gosum_line_gets_zip_unpinned():
    mod, problems = gomod.parse_gomod(b"module x\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/c v1.2.0\n)\n", "go.mod")
    assert not problems
    plan = wants.plan(sums(f"example.com/a v1.0.0/go.mod {H2}\n"), mod.requires, [])
    a, c = plan
    assert not a.need_zip and a.pinned  # go.sum rules apply when go.sum knows the version
    assert c.need_zip and not c.pinned and not c.zip_h1 and c.origin == "go.mod:5"


def test_explicit_module_always_wants_zip():
    plan = wants.plan(sums(f"example.com/a v1.0.0/go.mod {H2}\n"), [], [(ModuleVersion("example.com/a", "v1.0.0"), "--module")])
    (a,) = plan
    assert a.need_zip and not a.pinned and a.mod_h1 == {H2}


def test_plan_is_sorted_by_path_then_semver():
    ms = [ModuleVersion("example.com/a", v) for v in ("v1.10.0", "v1.2.0", "v1.2.0-rc.1")]
    plan = wants.plan([], [], [(m, "x") for m in ms])
    assert [w.module.version for w in plan] == ["v1.2.0-rc.1", "v1.2.0", "v1.10.0"]


def test_files_use_escaped_paths():
    (w,) = wants.plan([], [], [(ModuleVersion("example.com/BigCorp/Util", "v1.0.0"), "x")])
    assert [rel for _, rel in w.files()] == [
        "example.com/!big!corp/!util/@v/v1.0.0.mod",
        "example.com/!big!corp/!util/@v/v1.0.0.info",
        "example.com/!big!corp/!util/@v/v1.0.0.zip",
    ]
