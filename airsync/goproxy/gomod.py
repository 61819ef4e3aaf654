"""Reading go.mod files as the go command does: the main module's strictly, a dependency's laxly.

Each line is tokenized as golang.org/x/mod/modfile's lexer does (``//`` comments, ``( ) [ ] { } ,``
tokens, ``"..."`` and ```...``` strings that cannot span lines, other printable runs as words), and
``require (`` ... ``)`` style blocks are tracked across lines. Tokens become strings through
parseString (so raw strings, though lexed, are rejected) and versions are canonicalised (``v1.2`` ->
``v1.2.0``). The main module's go.mod (``lax=False``, modfile.Parse) must be valid throughout:
unknown directives or block types are errors; ``module``, ``go``, ``toolchain``, ``require``,
``exclude``, ``replace`` and ``retract`` are read, ``godebug``, ``tool`` and ``ignore`` skipped. A
dependency's go.mod (``lax=True``, modfile.ParseLax, which the go command uses for every module but
the main one) is read only for ``module``, ``go``, ``require`` and ``retract``: every other line,
known or not, is ignored, so that a go.mod written for a newer Go never breaks a build; only lexical
and block syntax errors, and bad ``module``/``go``/``require`` lines, make it unreadable.

Unlike modfile, a bad line is reported and parsing goes on. ``replace`` right-hand sides naming a
module version are returned since they must be downloaded; a requirement that a ``replace`` covers
is left out of ``requires``, because the go command never fetches it (and its path may be no module
path at all, as in ``require mylib v0.0.0`` + ``replace mylib => ./mylib``); ``graph_requires`` keeps
every requirement as an edge of the module graph. Comments above or beside the ``module`` line give
its deprecation (``// Deprecated: ...``), those of a ``retract`` its rationale, as modfile finds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airsync.errors import InputError, ModulePathError
from airsync.goproxy import semver
from airsync.goproxy.modpath import (
    ModuleVersion,
    canonical_version,
    check_path_major,
    check_version,
    quote,
    split_path_version,
)

__all__ = ["Require", "Replace", "Retract", "GoMod", "parse_gomod"]


@dataclass(frozen=True)
class Require:
    module: ModuleVersion
    indirect: bool
    source: str
    lineno: int


class _LineError(Exception):
    """A problem with one statement; becomes an InputError for its line."""


_PUNCT = frozenset("()[]{},")
_BLOCK_VERBS = frozenset({"module", "godebug", "require", "exclude", "replace", "retract", "tool", "ignore"})
_SKIPPED_VERBS = frozenset({"godebug", "tool", "ignore"})  # known, but nothing a mirror needs


# --- lexer -----------------------------------------------------------------------------------------


def _is_ident_char(c: str) -> bool:
    # modfile: printable and not white space, minus the punctuation tokens. Python's isprintable()
    # is Go's unicode.IsPrint (letters, marks, numbers, punctuation, symbols, ASCII space).
    return c.isprintable() and c not in " ()[]{},"


def _tokenize(line: str) -> tuple[list[str], str | None]:
    """The tokens of one line and its '//' comment text (without '//'), or raise _LineError."""
    tokens: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\r":
            i += 1
            continue
        if line.startswith("//", i):
            return tokens, line[i + 2 :].rstrip("\r")
        if line.startswith("/*", i):
            raise _LineError("mod files must use // comments (not /* */ comments)")
        if c in _PUNCT:
            tokens.append(c)
            i += 1
            continue
        if c in "\"`":
            j = i + 1
            while True:
                if j >= n:
                    raise _LineError("unexpected newline in string")
                d = line[j]
                j += 1
                if d == c:
                    break
                if d == "\\" and c == '"':
                    if j >= n:
                        raise _LineError("unexpected newline in string")
                    j += 1
            tokens.append(line[i:j])
            i = j
            continue
        if not _is_ident_char(c):
            raise _LineError(f"unexpected input character {quote(c)}")
        j = i
        while j < n and _is_ident_char(line[j]):
            if line.startswith("//", j):
                break
            if line.startswith("/*", j):
                raise _LineError("mod files must use // comments (not /* */ comments)")
            j += 1
        tokens.append(line[i:j])
        i = j
    return tokens, None


# --- strings (modfile parseString, strconv.Unquote) ------------------------------------------------

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}


def _unquote(tok: str) -> str:
    """Go's strconv.Unquote for a double-quoted token; bytes that are not UTF-8 come back as surrogates."""
    if len(tok) < 2 or tok[0] != '"' or tok[-1] != '"':
        raise _LineError(f"invalid quoted string {quote(tok)}")
    body = tok[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c == '"':
            raise _LineError(f"invalid quoted string {quote(tok)}")
        if c != "\\":
            out += c.encode("utf-8", errors="surrogateescape")
            i += 1
            continue
        if i + 1 >= len(body):
            raise _LineError(f"invalid quoted string {quote(tok)}")
        e = body[i + 1]
        i += 2
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            continue
        if e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i : i + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise _LineError(f"invalid quoted string {quote(tok)}")
            i += width
            value = int(digits, 16)
            if e == "x":
                out.append(value)
            else:
                if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                    raise _LineError(f"invalid quoted string {quote(tok)}")
                out += chr(value).encode("utf-8")
            continue
        if "0" <= e <= "7":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all("0" <= d <= "7" for d in digits) or int(digits, 8) > 255:
                raise _LineError(f"invalid quoted string {quote(tok)}")
            i += 2
            out.append(int(digits, 8))
            continue
        raise _LineError(f"invalid quoted string {quote(tok)}")
    return out.decode("utf-8", errors="surrogateescape")


def _parse_string(tok: str) -> str:
    if tok.startswith('"'):
        return _unquote(tok)
    if any(q in tok for q in "\"'`"):
        # modfile reserves other quotes (raw strings too) so that 'x' is an error, not a literal x.
        raise _LineError(f"invalid quoted string {quote(tok)}: unquoted string cannot contain quote")
    return tok


def _parse_version(verb: str, path: str, tok: str) -> str:
    v = _parse_string(tok)
    cv = canonical_version(v)
    if cv == "":
        raise _LineError(f"{verb} {quote(path)}: version {quote(v)} invalid: must be of the form v1.2.3")
    return cv


def _path_major(verb: str, path: str) -> str:
    _, major, ok = split_path_version(path)
    if not ok:
        raise _LineError(f"{verb} {quote(path)}: invalid module path")
    return major


def _is_directory_path(ns: str) -> bool:
    # modfile.IsDirectoryPath: go.mod files move between systems, so both Unix and Windows forms count.
    return (
        ns in (".", "..")
        or ns.startswith(("./", ".\\", "../", "..\\", "/", "\\"))
        or (len(ns) >= 2 and ns[0].isascii() and ns[0].isalpha() and ns[1] == ":")
    )


def _is_indirect(comment: str | None) -> bool:
    if comment is None:
        return False
    f = comment.split()
    return (len(f) == 1 and f[0] == "indirect") or (len(f) > 1 and f[0] == "indirect;")


# --- statements ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Req:
    path: str
    version: str
    indirect: bool
    lineno: int


@dataclass(frozen=True)
class Replace:
    """``replace old [old_version] => new [new_version]``; ``new_version`` is '' for a directory."""

    old: str
    old_version: str  # '' when the replace covers every version
    new: str
    new_version: str
    lineno: int


@dataclass(frozen=True)
class Retract:
    """``retract v`` or ``retract [low, high]``: versions the module's author withdrew."""

    low: str
    high: str
    rationale: str

    def covers(self, version: str) -> bool:
        return semver.compare(self.low, version) <= 0 and semver.compare(version, self.high) <= 0


# modfile's GoVersionRE, laxGoVersionRE and ToolchainRE.
_GO_VERSION = re.compile(r"([1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?([a-z]+[0-9]+)?")
_LAX_GO_VERSION = re.compile(r"v?(([1-9][0-9]*)\.(0|[1-9][0-9]*))([^0-9].*)", re.S)
_TOOLCHAIN = re.compile(r"default|go1(\..*)?", re.S)
_DEPRECATED = re.compile(r"(?:^|\n\n)Deprecated: *(.*?)(?:\Z|\n\n)", re.S)


def _validate(verb: str, path: str, version: str) -> None:
    try:
        check_version(path, version)
    except ModulePathError as e:
        raise _LineError(f"{verb} {e}") from None


def _parse_require(verb: str, args: list[str], comment: str | None, lineno: int) -> _Req:
    if len(args) != 2:
        raise _LineError(f"usage: {verb} module/path v1.2.3")
    path = _parse_string(args[0])
    version = _parse_version(verb, path, args[1])
    why = check_path_major(version, _path_major(verb, path))
    if why is not None:
        raise _LineError(f"{verb} {quote(path)}: version {quote(version)} invalid: {why}")
    # Full validation (check_path and the stricter version rules) waits until the replacements are
    # known: a replaced requirement may have a path that is no real module path.
    return _Req(path, version, _is_indirect(comment), lineno)


def _parse_replace(args: list[str], lineno: int) -> Replace:
    arrow = 1 if len(args) >= 2 and args[1] == "=>" else 2
    if len(args) < arrow + 2 or len(args) > arrow + 3 or args[arrow] != "=>":
        raise _LineError(
            "usage: replace module/path [v1.2.3] => other/module v1.4"
            " or replace module/path [v1.2.3] => ../local/directory"
        )
    old = _parse_string(args[0])
    old_major = _path_major("replace", old)
    old_version = ""
    if arrow == 2:
        old_version = _parse_version("replace", old, args[1])
        why = check_path_major(old_version, old_major)
        if why is not None:
            raise _LineError(f"replace {quote(old)}: version {quote(old_version)} invalid: {why}")
    new = _parse_string(args[arrow + 1])
    new_version = ""
    if len(args) == arrow + 2:
        if not _is_directory_path(new):
            if "@" in new:
                raise _LineError("replacement module must match format 'path version', not 'path@version'")
            raise _LineError(
                "replacement module without version must be directory path (rooted or starting with . or ..)"
            )
    else:
        new_version = _parse_version("replace", new, args[arrow + 2])
        if _is_directory_path(new):
            raise _LineError(f"replacement module directory path {quote(new)} cannot have version")
        # This module version will be downloaded, so it must be a valid one.
        _validate("replace", new, new_version)
    return Replace(old, old_version, new, new_version, lineno)


def _parse_retract(args: list[str], rationale: str) -> Retract:
    """modfile's parseVersionInterval, followed by nothing (strict mode's rule)."""
    if not args or args[0] == "(":
        raise _LineError("expected '[' or version")
    if args[0] != "[":
        v = _parse_version("retract", "", args[0])
        rest = args[1:]
        low = high = v
    else:
        toks = args[1:]
        if not toks:
            raise _LineError("expected version after '['")
        low = _parse_version("retract", "", toks[0])
        if len(toks) < 2 or toks[1] != ",":
            raise _LineError("expected ',' after version")
        if len(toks) < 3:
            raise _LineError("expected version after ','")
        high = _parse_version("retract", "", toks[2])
        if len(toks) < 4 or toks[3] != "]":
            raise _LineError("expected ']' after version")
        rest = toks[4:]
    if rest:
        raise _LineError(f"unexpected token after version: {quote(rest[0])}")
    return Retract(low, high, rationale)


def _go_version(arg: str, lax: bool) -> str:
    if _GO_VERSION.fullmatch(arg):
        return arg
    m = _LAX_GO_VERSION.fullmatch(arg) if lax else None
    if m is None:
        raise _LineError(f"invalid go version '{arg}': must match format 1.23.0")
    return m.group(1)


def _directive_comment(before: list[str], suffix: str | None, block: list[str] | None) -> str:
    """modfile's parseDirectiveComment: the comments above and beside a line, else its block's."""
    lines = list(before) + ([suffix] if suffix is not None else [])
    if not lines and block:
        lines = block
    return "\n".join(c.strip() for c in lines)


def _split_statement(tokens: list[str]) -> tuple[str, list[str] | None]:
    """('line', tokens) for a one-line statement or ('block', head tokens) for one opening a block.

    Mirrors modfile's parseStmt: '(' opens a block only when it ends the line, '( )' ending the line
    is an empty block, and any other '(' is an ordinary token.
    """
    out = [tokens[0]]
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if tok == "(":
            if i == len(tokens) - 1:
                return "block", out
            if tokens[i + 1] == ")" and i + 1 == len(tokens) - 1:
                return "empty", out
        out.append(tok)
        i += 1
    return "line", out


@dataclass(frozen=True)
class GoMod:
    module_path: str | None
    requires: tuple[Require, ...]  # what must be fetched: valid, and not covered by a replace
    replacements: tuple[Require, ...]  # replacement module versions (they are fetched instead)
    go: str | None = None
    toolchain: str | None = None  # main module only (lax parsing ignores it, as modfile does)
    deprecated: str = ""  # the module line's "Deprecated:" paragraph
    retracts: tuple[Retract, ...] = ()
    excludes: tuple[ModuleVersion, ...] = ()  # main module only
    replaces: tuple[Replace, ...] = ()  # main module only
    graph_requires: tuple[ModuleVersion, ...] = ()  # every require line, replaced or not: graph edges

    def retracted(self, version: str) -> Retract | None:
        return next((r for r in self.retracts if r.covers(version)), None)


# Verbs a dependency's go.mod is read for (modfile.ParseLax); everything else there is ignored, so
# a go.mod written for a newer Go never breaks a mirror (or an older go command).
_LAX_VERBS = frozenset({"go", "module", "retract", "require", "ignore"})


def parse_gomod(data: bytes, source: str, lax: bool = False) -> tuple[GoMod, list[InputError]]:
    """The statements of a go.mod that matter to a mirror, and an InputError for each bad line.

    ``lax=False`` reads it as the main module's (modfile.Parse), ``lax=True`` as a dependency's
    (modfile.ParseLax: only module, go, require and retract are read; unknown verbs and block
    types, replace, exclude and toolchain are ignored; a retract that does not parse is dropped).
    """
    errors: list[InputError] = []
    module_path: str | None = None
    module_seen = False
    go: str | None = None
    toolchain: str | None = None
    deprecated = ""
    reqs: list[_Req] = []
    repls: list[Replace] = []
    excludes: list[ModuleVersion] = []
    retracts: list[Retract] = []

    block_verb: str | None = None  # verb of the open block; '' for a block whose lines are skipped
    block_line = 0
    block_comments: list[str] = []
    before: list[str] = []  # comment lines directly above the next statement

    def statement(verb: str, args: list[str], comment: str | None, lineno: int, block: list[str] | None) -> None:
        nonlocal module_path, module_seen, go, toolchain, deprecated
        if lax and verb not in _LAX_VERBS:
            return
        if verb in ("require", "exclude"):
            r = _parse_require(verb, args, comment, lineno)
            if verb == "require":
                reqs.append(r)
            else:
                excludes.append(ModuleVersion(r.path, r.version))
        elif verb == "replace":
            repls.append(_parse_replace(args, lineno))
        elif verb == "module":
            if module_seen:
                raise _LineError("repeated module statement")
            module_seen = True
            deprecated = _deprecation(_directive_comment(before, comment, block))
            if len(args) != 1:
                raise _LineError("usage: module module/path")
            module_path = _parse_string(args[0])
        elif verb == "go":
            if go is not None:
                raise _LineError("repeated go statement")
            if len(args) != 1:
                raise _LineError("go directive expects exactly one argument")
            go = _go_version(args[0], lax)
        elif verb == "toolchain":
            if toolchain is not None:
                raise _LineError("repeated toolchain statement")
            if len(args) != 1:
                raise _LineError("toolchain directive expects exactly one argument")
            if not _TOOLCHAIN.fullmatch(args[0]):
                raise _LineError(f"invalid toolchain version '{args[0]}': must match format go1.23.0 or default")
            toolchain = args[0]
        elif verb == "retract":
            try:
                retracts.append(_parse_retract(args, _directive_comment(before, comment, block)))
            except _LineError:
                if not lax:  # modfile reports these only for the main module
                    raise
        elif verb not in _SKIPPED_VERBS:
            raise _LineError(f"unknown directive: {quote(verb)}")

    # Undecodable bytes become U+FFFD, which modfile's lexer (decoding the same way) reads as an
    # ordinary character: harmless in comments, rejected by the path checks elsewhere.
    for lineno, line in enumerate(data.decode("utf-8", errors="replace").split("\n"), start=1):
        try:
            tokens, comment = _tokenize(line)
            if not tokens:
                if comment is not None:
                    before.append(comment)
                else:
                    before = []  # a blank line ends a comment block: it belongs to nothing below
                continue
            if block_verb is not None:
                if tokens[0] == ")":
                    block_verb = None
                    if len(tokens) > 1:
                        raise _LineError("syntax error (expected newline after closing paren)")
                elif block_verb:
                    statement(block_verb, tokens, comment, lineno, block_comments)
                continue
            kind, head = _split_statement(tokens)
            if kind == "line":
                statement(head[0], head[1:], comment, lineno, None)
                continue
            known = len(head) == 1 and head[0] in _BLOCK_VERBS
            if kind == "block":
                block_verb = head[0] if known and (not lax or head[0] in _LAX_VERBS) else ""
                block_line = lineno
                block_comments = before + ([comment] if comment is not None else [])
            if not known and not lax:
                raise _LineError(f"unknown block type: {' '.join(quote(t) for t in head)}")
        except _LineError as e:
            errors.append(InputError(source, lineno, str(e)))
        before = []
    if block_verb is not None:
        errors.append(InputError(source, block_line, "syntax error (unterminated block)"))

    # A replaced requirement is never fetched (its replacement is), so it is neither returned nor
    # held to module path rules: a directory replacement may stand in for a path like "mylib".
    replaced = {(r.old, r.old_version) for r in repls}
    requires = []
    for r in reqs:
        if (r.path, "") in replaced or (r.path, r.version) in replaced:
            continue
        if not lax:  # modfile leaves this to the loader; a dependency's bad path matters only if used
            try:
                check_version(r.path, r.version)
            except ModulePathError as e:
                errors.append(InputError(source, r.lineno, f"require {e}"))
                continue
        requires.append(Require(ModuleVersion(r.path, r.version), r.indirect, source, r.lineno))
    replacements = tuple(
        Require(ModuleVersion(r.new, r.new_version), False, source, r.lineno) for r in repls if r.new_version
    )
    errors.sort(key=lambda e: e.lineno or 0)
    return GoMod(
        module_path, tuple(requires), replacements, go=go, toolchain=toolchain, deprecated=deprecated,
        retracts=tuple(retracts), excludes=tuple(excludes), replaces=tuple(repls),
        graph_requires=tuple(ModuleVersion(r.path, r.version) for r in reqs),
    ), errors


def _deprecation(text: str) -> str:
    m = _DEPRECATED.search(text)
    return m.group(1) if m else ""
