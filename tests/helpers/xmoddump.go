// Command xmoddump writes zz_airsync_dump_test.go into a copy of one golang.org/x/mod package, a
// test that dumps x/mod's own test data as JSON for airsync's conformance tests
// (tests/helpers/xmod.py runs it; see there for the whole flow).
//
// It reads the package's _test.go files where x/mod is installed and lifts into the new file only
// what is asked for, with everything it refers to (types, helpers, their methods and imports):
// package-level tables (-tables), dumped by reflection, unexported fields and all; and test
// functions (-funcs), renamed and run, whose calls to a package function F go through a recording
// wrapper airsyncRec_F wherever the package's snippet below declares one. The snippet may also
// declare airsyncOracle, which asks x/mod's functions themselves about its test data. x/mod's
// original _test.go files are not part of the copy, so nothing else of them needs to compile
// (zip_test.go imports golang.org/x/tools, which an offline copy cannot have).
//
// Everything generated must build with the language version of the oldest x/mod tested (go 1.17
// for Debian's 0.7.0): no generics, no "any".
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	src := flag.String("src", "", "the installed x/mod package directory (only read)")
	dst := flag.String("dst", "", "the copy's package directory, where the test file is written")
	pkg := flag.String("pkg", "", "the package's path inside x/mod: module, semver, sumdb/note, ...")
	tables := flag.String("tables", "", "comma-separated package-level test variables to dump")
	funcs := flag.String("funcs", "", "comma-separated test functions to run with their calls recorded")
	out := flag.String("out", "", "the JSON file the generated test writes")
	flag.Parse()
	if err := generate(*src, *dst, *pkg, split(*tables), split(*funcs), *out); err != nil {
		fmt.Fprintln(os.Stderr, "xmoddump:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

type decl struct {
	node ast.Decl
	file *ast.File
}

type lifter struct {
	fset    *token.FileSet
	top     map[string]*decl   // package-level name -> its declaration (a whole group for var/const/type)
	methods map[string][]*decl // receiver type name -> its methods
	taken   map[ast.Decl]bool
	order   []*decl
	imports map[string]string // local name -> import path, for the lifted declarations
}

func generate(src, dst, pkgPath string, tables, funcs []string, out string) error {
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(src, "*_test.go"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	var files []*ast.File
	for _, name := range names {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	snippetText, ok := snippets[pkgPath]
	if !ok {
		return fmt.Errorf("no snippet for package %q", pkgPath)
	}

	// The test package is the one that declares the first name asked for (zip's tables live in
	// the external package zip_test, the others in the package itself).
	pkgName := ""
	for _, want := range append(append([]string{}, tables...), funcs...) {
		for _, f := range files {
			if declares(f, want) {
				pkgName = f.Name.Name
				break
			}
		}
		if pkgName != "" {
			break
		}
	}
	if pkgName == "" {
		return fmt.Errorf("none of %v is declared in %s", append(tables, funcs...), src)
	}

	l := &lifter{fset: fset, top: map[string]*decl{}, methods: map[string][]*decl{}, taken: map[ast.Decl]bool{}, imports: map[string]string{}}
	for _, f := range files {
		if f.Name.Name == pkgName {
			l.index(f)
		}
	}
	snippet, err := parser.ParseFile(fset, "snippet.go", "package "+pkgName+"\n"+snippetText, parser.SkipObjectResolution)
	if err != nil {
		return fmt.Errorf("snippet for %s: %v", pkgPath, err)
	}
	wrapped := map[string]bool{}
	hasOracle := false
	for _, d := range snippet.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
			if strings.HasPrefix(fd.Name.Name, "airsyncRec_") {
				wrapped[strings.TrimPrefix(fd.Name.Name, "airsyncRec_")] = true
			}
			if fd.Name.Name == "airsyncOracle" {
				hasOracle = true
			}
		}
	}

	var foundTables, foundFuncs, missing []string
	for _, name := range tables {
		if d := l.top[name]; d != nil {
			if _, isFunc := d.node.(*ast.FuncDecl); !isFunc {
				foundTables = append(foundTables, name)
				continue
			}
		}
		missing = append(missing, name)
	}
	for _, name := range funcs {
		if d := l.top[name]; d != nil {
			if _, isFunc := d.node.(*ast.FuncDecl); isFunc {
				// A test that could reach the network or run programs is never run (Debian's
				// x/mod 0.7.0 fetches its Certificate Transparency vectors from the internet).
				if bad := l.trial(name).unsafeImport(); bad != "" {
					missing = append(missing, name+" (imports "+bad+")")
					continue
				}
				foundFuncs = append(foundFuncs, name)
				continue
			}
		}
		missing = append(missing, name)
	}

	for _, name := range foundTables {
		l.take(name)
	}
	for _, name := range foundFuncs {
		l.take(name)
	}
	// What the snippet refers to is lifted too (a wrapper may name a test helper type).
	for _, d := range snippet.Decls {
		for _, ref := range refs(d) {
			l.take(ref)
		}
	}

	// Rename the lifted test functions and route their calls through the recording wrappers.
	for _, name := range foundFuncs {
		fd := l.top[name].node.(*ast.FuncDecl)
		fd.Name.Name = "airsync_" + name
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if id, ok := call.Fun.(*ast.Ident); ok && wrapped[id.Name] {
					id.Name = "airsyncRec_" + id.Name
				}
			}
			return true
		})
	}

	for _, spec := range snippet.Imports {
		path, _ := strconv.Unquote(spec.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if spec.Name != nil {
			name = spec.Name.Name
		}
		if other, ok := l.imports[name]; ok && other != path {
			return fmt.Errorf("snippet for %s imports %s as %s, which the tests use for %s", pkgPath, path, name, other)
		}
		l.imports[name] = path
	}

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "// Code generated by tests/helpers/xmoddump.go from x/mod's %s tests; DO NOT EDIT.\n\n", pkgPath)
	fmt.Fprintf(&buf, "package %s\n\nimport (\n", pkgName)
	var imports []string
	for name, path := range l.imports {
		imports = append(imports, fmt.Sprintf("\t%s %s\n", name, strconv.Quote(path)))
	}
	imports = append(imports, harnessImports)
	sort.Strings(imports)
	buf.WriteString(strings.Join(dedupe(imports), ""))
	buf.WriteString(")\n\n")
	for _, d := range l.order {
		if err := printer.Fprint(&buf, fset, d.node); err != nil {
			return err
		}
		buf.WriteString("\n\n")
	}
	for _, d := range snippet.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
			continue
		}
		if err := printer.Fprint(&buf, fset, d); err != nil {
			return err
		}
		buf.WriteString("\n\n")
	}

	buf.WriteString("func TestAirsyncDump(t *airsynctesting.T) {\n")
	for _, name := range foundFuncs {
		fmt.Fprintf(&buf, "\tairsyncRun(t, %q, airsync_%s)\n", name, name)
	}
	buf.WriteString("\tdump := map[string]interface{}{\n\t\t\"tables\": map[string]interface{}{\n")
	for _, name := range foundTables {
		fmt.Fprintf(&buf, "\t\t\t%q: airsyncEncode(airsyncreflect.ValueOf(%s), 0),\n", name, name)
	}
	buf.WriteString("\t\t},\n")
	fmt.Fprintf(&buf, "\t\t\"missing\": %#v,\n", append([]string{}, missing...))
	buf.WriteString("\t\t\"calls\": airsyncCalls,\n")
	if hasOracle {
		buf.WriteString("\t\t\"oracle\": airsyncEncode(airsyncreflect.ValueOf(airsyncOracle()), 0),\n")
	}
	buf.WriteString("\t}\n")
	fmt.Fprintf(&buf, "\tairsyncWrite(t, %q, dump)\n}\n\n", out)
	buf.WriteString(harness)

	formatted, err := format.Source(buf.Bytes())
	if err != nil {
		// Leave the unformatted file behind: the go command's error then points into it.
		formatted = buf.Bytes()
	}
	return os.WriteFile(filepath.Join(dst, "zz_airsync_dump_test.go"), formatted, 0o644)
}

func dedupe(lines []string) []string {
	var outLines []string
	for i, line := range lines {
		if i == 0 || line != lines[i-1] {
			outLines = append(outLines, line)
		}
	}
	return outLines
}

func declares(f *ast.File, name string) bool {
	for _, d := range f.Decls {
		for _, n := range declNames(d) {
			if n == name {
				return true
			}
		}
	}
	return false
}

func declNames(d ast.Decl) []string {
	switch d := d.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil {
			return []string{d.Name.Name}
		}
	case *ast.GenDecl:
		var names []string
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.ValueSpec:
				for _, id := range s.Names {
					names = append(names, id.Name)
				}
			case *ast.TypeSpec:
				names = append(names, s.Name.Name)
			}
		}
		return names
	}
	return nil
}

func (l *lifter) index(f *ast.File) {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil {
			recv := receiverName(fd.Recv.List[0].Type)
			l.methods[recv] = append(l.methods[recv], &decl{d, f})
			continue
		}
		for _, name := range declNames(d) {
			if name != "_" {
				l.top[name] = &decl{d, f}
			}
		}
	}
}

func receiverName(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}

// trial is what lifting name alone would take, in a scratch lifter.
func (l *lifter) trial(name string) *lifter {
	t := &lifter{fset: l.fset, top: l.top, methods: l.methods, taken: map[ast.Decl]bool{}, imports: map[string]string{}}
	t.take(name)
	return t
}

func (l *lifter) unsafeImport() string {
	for _, path := range l.imports {
		if path == "net" || strings.HasPrefix(path, "net/") && path != "net/url" || path == "os/exec" || path == "syscall" {
			return path
		}
	}
	return ""
}

// take lifts the declaration of name, with its methods, and then everything those refer to.
func (l *lifter) take(name string) {
	d := l.top[name]
	if d == nil {
		return
	}
	l.add(d)
	for _, m := range l.methods[name] {
		l.add(m)
	}
}

func (l *lifter) add(d *decl) {
	if l.taken[d.node] {
		return
	}
	l.taken[d.node] = true
	l.order = append(l.order, d)
	for _, spec := range d.file.Imports {
		path, _ := strconv.Unquote(spec.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if spec.Name != nil {
			name = spec.Name.Name
		}
		if name == "_" || name == "." {
			continue
		}
		for _, used := range pkgRefs(d.node) {
			if used == name && l.top[name] == nil {
				l.imports[name] = path
			}
		}
	}
	for _, ref := range refs(d.node) {
		l.take(ref)
	}
}

// refs lists the identifiers in n that may name package-level declarations (a selector's field or
// method name never does). Local names that happen to match are lifted too, which is harmless.
func refs(n ast.Node) []string {
	var names []string
	var visit func(ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			ast.Inspect(n.X, visit)
			return false
		case *ast.Ident:
			names = append(names, n.Name)
		}
		return true
	}
	ast.Inspect(n, visit)
	return names
}

// pkgRefs lists the X of every selector X.Sel in n whose X is a plain identifier (an imported
// package, or a variable, which matches no import and is ignored).
func pkgRefs(n ast.Node) []string {
	var names []string
	ast.Inspect(n, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				names = append(names, id.Name)
			}
		}
		return true
	})
	return names
}

const harnessImports = `	airsyncbase64 "encoding/base64"
	airsyncjson "encoding/json"
	airsyncos "os"
	airsyncreflect "reflect"
	airsyncstrconv "strconv"
	airsyncsync "sync"
	airsynctesting "testing"
	airsyncutf8 "unicode/utf8"
`

// harness is the part of the generated file that is the same for every package: running the
// lifted tests, recording calls and encoding Go values as JSON.
const harness = `
var (
	airsyncMu      airsyncsync.Mutex
	airsyncCalls   = []interface{}{}
	airsyncCurrent string
)

// airsyncRun runs one lifted x/mod test; its own checks still apply, so a failing x/mod test fails
// the dump.
func airsyncRun(t *airsynctesting.T, name string, fn func(*airsynctesting.T)) {
	airsyncCurrent = name
	t.Run(name, fn)
	airsyncCurrent = ""
}

// airsyncRecord notes one call made by a lifted test: its function, the test, and name/value pairs.
func airsyncRecord(fn string, kv ...interface{}) {
	m := map[string]interface{}{"fn": fn, "test": airsyncCurrent}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = airsyncEncode(airsyncreflect.ValueOf(kv[i+1]), 0)
	}
	airsyncMu.Lock()
	airsyncCalls = append(airsyncCalls, m)
	airsyncMu.Unlock()
}

// airsyncErr is an error's message, or nil.
func airsyncErr(err error) interface{} {
	if err == nil {
		return nil
	}
	return err.Error()
}

// airsyncEncode turns any Go value into what encoding/json writes faithfully. Unexported fields
// are read too (reflection reads them; only Interface() would refuse). Strings that are not UTF-8
// become {"$str": base64} and byte slices and arrays {"$bytes": base64}, since JSON strings would
// lose such bytes; integers are written exactly; functions and channels become null.
func airsyncEncode(v airsyncreflect.Value, depth int) interface{} {
	if depth > 16 {
		return map[string]interface{}{"$depth": true}
	}
	if !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case airsyncreflect.Bool:
		return v.Bool()
	case airsyncreflect.Int, airsyncreflect.Int8, airsyncreflect.Int16, airsyncreflect.Int32, airsyncreflect.Int64:
		return airsyncjson.Number(airsyncstrconv.FormatInt(v.Int(), 10))
	case airsyncreflect.Uint, airsyncreflect.Uint8, airsyncreflect.Uint16, airsyncreflect.Uint32, airsyncreflect.Uint64, airsyncreflect.Uintptr:
		return airsyncjson.Number(airsyncstrconv.FormatUint(v.Uint(), 10))
	case airsyncreflect.Float32, airsyncreflect.Float64:
		return v.Float()
	case airsyncreflect.String:
		s := v.String()
		if airsyncutf8.ValidString(s) {
			return s
		}
		return map[string]interface{}{"$str": airsyncbase64.StdEncoding.EncodeToString([]byte(s))}
	case airsyncreflect.Slice, airsyncreflect.Array:
		if v.Kind() == airsyncreflect.Slice && v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == airsyncreflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			return map[string]interface{}{"$bytes": airsyncbase64.StdEncoding.EncodeToString(b)}
		}
		list := make([]interface{}, v.Len())
		for i := range list {
			list[i] = airsyncEncode(v.Index(i), depth+1)
		}
		return list
	case airsyncreflect.Map:
		if v.IsNil() {
			return nil
		}
		// String keys make a JSON object; other keys (or strings that are not UTF-8) a list of pairs.
		obj := map[string]interface{}{}
		var pairs [][2]interface{}
		iter := v.MapRange()
		for iter.Next() {
			k, val := iter.Key(), airsyncEncode(iter.Value(), depth+1)
			if k.Kind() == airsyncreflect.String && airsyncutf8.ValidString(k.String()) && (len(k.String()) == 0 || k.String()[0] != '$') {
				obj[k.String()] = val
			}
			pairs = append(pairs, [2]interface{}{airsyncEncode(k, depth+1), val})
		}
		if len(obj) == len(pairs) {
			return obj
		}
		return map[string]interface{}{"$map": pairs}
	case airsyncreflect.Struct:
		m := map[string]interface{}{"$type": v.Type().String()}
		for i := 0; i < v.NumField(); i++ {
			m[v.Type().Field(i).Name] = airsyncEncode(v.Field(i), depth+1)
		}
		return m
	case airsyncreflect.Ptr, airsyncreflect.Interface:
		if v.IsNil() {
			return nil
		}
		return airsyncEncode(v.Elem(), depth+1)
	}
	return nil
}

func airsyncWrite(t *airsynctesting.T, path string, dump map[string]interface{}) {
	data, err := airsyncjson.Marshal(dump)
	if err != nil {
		t.Fatal(err)
	}
	if err := airsyncos.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
`

// snippets holds, per package, the recording wrappers (airsyncRec_F is called instead of F from
// the lifted tests) and the oracle. They use only APIs that every x/mod tested has.
var snippets = map[string]string{
	"module": `
func airsyncRec_MatchPathMajor(v, pathMajor string) bool {
	ok := MatchPathMajor(v, pathMajor)
	airsyncRecord("MatchPathMajor", "v", v, "pathMajor", pathMajor, "ok", ok)
	return ok
}

func airsyncRec_MatchPrefixPatterns(globs, target string) bool {
	ok := MatchPrefixPatterns(globs, target)
	airsyncRecord("MatchPrefixPatterns", "globs", globs, "target", target, "ok", ok)
	return ok
}

// airsyncOracle asks x/mod's own functions about every string in its module test tables, so the
// functions those tables leave untested (EscapeVersion, CanonicalVersion, ...) are compared too.
func airsyncOracle() interface{} {
	var strs []string
	for _, tt := range checkTests {
		strs = append(strs, tt.path, tt.version)
	}
	for _, tt := range checkPathTests {
		strs = append(strs, tt.path)
	}
	for _, tt := range splitPathVersionTests {
		strs = append(strs, tt.pathPrefix+tt.version, tt.pathPrefix)
	}
	for _, tt := range escapeTests {
		strs = append(strs, tt.path, tt.esc)
	}
	strs = append(strs, badUnescape...)
	for _, tt := range pseudoTests {
		strs = append(strs, tt.older, tt.version)
	}
	seen := map[string]bool{}
	answers := []interface{}{}
	for _, s := range strs {
		if seen[s] {
			continue
		}
		seen[s] = true
		esc, escErr := EscapePath(s)
		unesc, unescErr := UnescapePath(s)
		escV, escVErr := EscapeVersion(s)
		unescV, unescVErr := UnescapeVersion(s)
		prefix, pathMajor, ok := SplitPathVersion(s)
		answers = append(answers, map[string]interface{}{
			"s":                s,
			"CheckPath":        airsyncErr(CheckPath(s)),
			"CheckImportPath":  airsyncErr(CheckImportPath(s)),
			"CheckFilePath":    airsyncErr(CheckFilePath(s)),
			"EscapePath":       []interface{}{esc, airsyncErr(escErr)},
			"UnescapePath":     []interface{}{unesc, airsyncErr(unescErr)},
			"EscapeVersion":    []interface{}{escV, airsyncErr(escVErr)},
			"UnescapeVersion":  []interface{}{unescV, airsyncErr(unescVErr)},
			"SplitPathVersion": []interface{}{prefix, pathMajor, ok},
			"CanonicalVersion": CanonicalVersion(s),
			"IsPseudoVersion":  IsPseudoVersion(s),
		})
	}
	majors := []interface{}{}
	for _, tt := range checkTests {
		_, pathMajor, _ := SplitPathVersion(tt.path)
		majors = append(majors, map[string]interface{}{
			"v": tt.version, "pathMajor": pathMajor, "err": airsyncErr(CheckPathMajor(tt.version, pathMajor)),
		})
	}
	return map[string]interface{}{"strings": answers, "CheckPathMajor": majors}
}
`,

	"semver": `
func airsyncRec_Sort(list []string) {
	in := append([]string(nil), list...)
	Sort(list)
	airsyncRecord("Sort", "in", in, "out", list)
}

// airsyncOracle asks x/mod's own functions about every version in its semver test table; Compare
// for every pair.
func airsyncOracle() interface{} {
	rows := []interface{}{}
	for _, ti := range tests {
		cmp := []int{}
		for _, tj := range tests {
			cmp = append(cmp, Compare(ti.in, tj.in))
		}
		rows = append(rows, map[string]interface{}{
			"v": ti.in, "IsValid": IsValid(ti.in), "Canonical": Canonical(ti.in), "Major": Major(ti.in),
			"MajorMinor": MajorMinor(ti.in), "Prerelease": Prerelease(ti.in), "Build": Build(ti.in),
			"Compare": cmp,
		})
	}
	return rows
}
`,

	"sumdb/note": `
import "crypto/ed25519"
import "io"

// The keys that made each Verifier and Signer, so calls taking them can be recorded as keys.
var (
	airsyncVkeys = map[Verifier]string{}
	airsyncSkeys = map[Signer]string{}
)

// airsyncVerifiers is a VerifierList that remembers its keys (nil: not all made from keys).
type airsyncVerifiers struct {
	Verifiers
	vkeys []string
}

func airsyncRec_NewVerifier(vkey string) (Verifier, error) {
	v, err := NewVerifier(vkey)
	name, hash := "", uint32(0)
	if err == nil {
		name, hash = v.Name(), v.KeyHash()
		airsyncVkeys[v] = vkey
	}
	airsyncRecord("NewVerifier", "vkey", vkey, "err", airsyncErr(err), "name", name, "hash", hash)
	return v, err
}

func airsyncRec_NewSigner(skey string) (Signer, error) {
	s, err := NewSigner(skey)
	name, hash := "", uint32(0)
	if err == nil {
		name, hash = s.Name(), s.KeyHash()
		airsyncSkeys[s] = skey
	}
	airsyncRecord("NewSigner", "skey", skey, "err", airsyncErr(err), "name", name, "hash", hash)
	return s, err
}

func airsyncRec_VerifierList(list ...Verifier) Verifiers {
	vkeys := []string{}
	for _, v := range list {
		vkey, ok := airsyncVkeys[v]
		if !ok {
			vkeys = nil
			break
		}
		vkeys = append(vkeys, vkey)
	}
	return airsyncVerifiers{VerifierList(list...), vkeys}
}

// Open is recorded only with verifiers that came from keys: airsync has no pluggable Verifiers.
func airsyncRec_Open(msg []byte, known Verifiers) (*Note, error) {
	n, err := Open(msg, known)
	if list, ok := known.(airsyncVerifiers); ok && list.vkeys != nil {
		kind, note := "", n
		switch e := err.(type) {
		case nil:
		case *UnverifiedNoteError:
			kind, note = "unverified", e.Note
		case *InvalidSignatureError:
			kind = "invalid signature"
		default:
			kind = "other"
		}
		airsyncRecord("Open", "msg", msg, "vkeys", list.vkeys, "err", airsyncErr(err), "errKind", kind, "note", note)
	}
	return n, err
}

// Sign is recorded only with signers that came from keys (not the test's deliberately broken ones).
func airsyncRec_Sign(n *Note, signers ...Signer) ([]byte, error) {
	msg, err := Sign(n, signers...)
	skeys := []string{}
	for _, s := range signers {
		skey, ok := airsyncSkeys[s]
		if !ok {
			return msg, err
		}
		skeys = append(skeys, skey)
	}
	airsyncRecord("Sign", "note", n, "skeys", skeys, "msg", msg, "err", airsyncErr(err))
	return msg, err
}

// GenerateKey is recorded when it succeeds: airsync must read the keys x/mod writes.
func airsyncRec_GenerateKey(rand io.Reader, name string) (string, string, error) {
	skey, vkey, err := GenerateKey(rand, name)
	if err == nil {
		airsyncRecord("GenerateKey", "name", name, "skey", skey, "vkey", vkey)
	}
	return skey, vkey, err
}

func airsyncRec_NewEd25519VerifierKey(name string, key ed25519.PublicKey) (string, error) {
	vkey, err := NewEd25519VerifierKey(name, key)
	airsyncRecord("NewEd25519VerifierKey", "name", name, "key", []byte(key), "vkey", vkey, "err", airsyncErr(err))
	return vkey, err
}
`,

	"sumdb/tlog": `
// airsyncTiles is a TileHashReader that remembers the tree and tile height it reads.
type airsyncTiles struct {
	HashReader
	tree   Tree
	height int
}

func airsyncRec_TileHashReader(tree Tree, tr TileReader) HashReader {
	return airsyncTiles{TileHashReader(tree, tr), tree, tr.Height()}
}

// airsyncReader says which hash reader a call used: the hashes the test stored (each recorded by
// its StoredHashes call), or the tiles of a tree (made from those hashes).
func airsyncReader(r HashReader) interface{} {
	switch r := r.(type) {
	case nil:
		return nil
	case testHashStorage:
		return "storage"
	case airsyncTiles:
		return map[string]interface{}{"height": r.height, "n": r.tree.N, "hash": r.tree.Hash}
	}
	return "other"
}

func airsyncRec_StoredHashes(n int64, data []byte, r HashReader) ([]Hash, error) {
	hashes, err := StoredHashes(n, data, r)
	airsyncRecord("StoredHashes", "n", n, "data", data, "reader", airsyncReader(r), "hashes", hashes, "err", airsyncErr(err))
	return hashes, err
}

func airsyncRec_StoredHashCount(n int64) int64 {
	count := StoredHashCount(n)
	airsyncRecord("StoredHashCount", "n", n, "count", count)
	return count
}

// airsyncDerived says whether a call's answer follows from calls already recorded: TestTree checks
// every proof it makes, also with each of its hashes corrupted (77,000 calls), and reads each
// leaf's hash by its index. The conformance test repeats those checks on the recorded proofs.
func airsyncDerived() bool {
	return airsyncCurrent == "TestTree"
}

func airsyncRec_StoredHashIndex(level int, n int64) int64 {
	index := StoredHashIndex(level, n)
	if airsyncDerived() {
		return index
	}
	airsyncRecord("StoredHashIndex", "level", level, "n", n, "index", index)
	return index
}

func airsyncRec_SplitStoredHashIndex(index int64) (int, int64) {
	level, n := SplitStoredHashIndex(index)
	airsyncRecord("SplitStoredHashIndex", "index", index, "level", level, "n", n)
	return level, n
}

func airsyncRec_TreeHash(n int64, r HashReader) (Hash, error) {
	h, err := TreeHash(n, r)
	airsyncRecord("TreeHash", "n", n, "reader", airsyncReader(r), "hash", h, "err", airsyncErr(err))
	return h, err
}

func airsyncRec_ProveRecord(t, n int64, r HashReader) (RecordProof, error) {
	p, err := ProveRecord(t, n, r)
	airsyncRecord("ProveRecord", "t", t, "n", n, "reader", airsyncReader(r), "proof", p, "err", airsyncErr(err))
	return p, err
}

func airsyncRec_ProveTree(t, n int64, r HashReader) (TreeProof, error) {
	p, err := ProveTree(t, n, r)
	airsyncRecord("ProveTree", "t", t, "n", n, "reader", airsyncReader(r), "proof", p, "err", airsyncErr(err))
	return p, err
}

func airsyncRec_CheckRecord(p RecordProof, t int64, th Hash, n int64, h Hash) error {
	err := CheckRecord(p, t, th, n, h)
	if airsyncDerived() {
		return err
	}
	airsyncRecord("CheckRecord", "proof", p, "t", t, "th", th, "n", n, "h", h, "err", airsyncErr(err))
	return err
}

func airsyncRec_CheckTree(p TreeProof, t int64, th Hash, n int64, h Hash) error {
	err := CheckTree(p, t, th, n, h)
	if airsyncDerived() {
		return err
	}
	airsyncRecord("CheckTree", "proof", p, "t", t, "th", th, "n", n, "h", h, "err", airsyncErr(err))
	return err
}

func airsyncRec_NewTiles(h int, oldTreeSize, newTreeSize int64) []Tile {
	tiles := NewTiles(h, oldTreeSize, newTreeSize)
	airsyncRecord("NewTiles", "h", h, "old", oldTreeSize, "new", newTreeSize, "tiles", tiles)
	return tiles
}

func airsyncRec_ReadTileData(t Tile, r HashReader) ([]byte, error) {
	data, err := ReadTileData(t, r)
	airsyncRecord("ReadTileData", "tile", t, "reader", airsyncReader(r), "data", data, "err", airsyncErr(err))
	return data, err
}

func airsyncRec_TileForIndex(h int, index int64) Tile {
	t := TileForIndex(h, index)
	airsyncRecord("TileForIndex", "h", h, "index", index, "tile", t)
	return t
}

func airsyncRec_HashFromTile(t Tile, data []byte, index int64) (Hash, error) {
	h, err := HashFromTile(t, data, index)
	airsyncRecord("HashFromTile", "tile", t, "data", data, "index", index, "hash", h, "err", airsyncErr(err))
	return h, err
}

func airsyncRec_ParseTilePath(path string) (Tile, error) {
	t, err := ParseTilePath(path)
	airsyncRecord("ParseTilePath", "path", path, "tile", t, "err", airsyncErr(err))
	return t, err
}

func airsyncRec_ParseHash(s string) (Hash, error) {
	h, err := ParseHash(s)
	airsyncRecord("ParseHash", "s", s, "hash", h, "err", airsyncErr(err))
	return h, err
}

func airsyncRec_FormatTree(tree Tree) []byte {
	text := FormatTree(tree)
	airsyncRecord("FormatTree", "tree", tree, "text", text)
	return text
}

func airsyncRec_ParseTree(text []byte) (Tree, error) {
	tree, err := ParseTree(text)
	airsyncRecord("ParseTree", "text", text, "tree", tree, "err", airsyncErr(err))
	return tree, err
}

func airsyncRec_FormatRecord(id int64, text []byte) ([]byte, error) {
	msg, err := FormatRecord(id, text)
	airsyncRecord("FormatRecord", "id", id, "text", text, "msg", msg, "err", airsyncErr(err))
	return msg, err
}

func airsyncRec_ParseRecord(msg []byte) (int64, []byte, []byte, error) {
	id, text, rest, err := ParseRecord(msg)
	airsyncRecord("ParseRecord", "msg", msg, "id", id, "text", text, "rest", rest, "err", airsyncErr(err))
	return id, text, rest, err
}
`,

	"sumdb/dirhash": `
import "io/ioutil"
import "io"
import "os"
import "path/filepath"

func airsyncRec_Hash1(files []string, open func(string) (io.ReadCloser, error)) (string, error) {
	h, err := Hash1(files, open)
	contents := [][]byte{}
	for _, name := range files {
		r, openErr := open(name)
		if openErr != nil {
			return h, err
		}
		data, _ := ioutil.ReadAll(r)
		r.Close()
		contents = append(contents, data)
	}
	airsyncRecord("Hash1", "files", files, "contents", contents, "hash", h, "err", airsyncErr(err))
	return h, err
}

// HashDir is recorded with the directory's files (slash-separated names relative to dir).
func airsyncRec_HashDir(dir, prefix string, hash Hash) (string, error) {
	h, err := HashDir(dir, prefix, hash)
	names, contents := []string{}, [][]byte{}
	filepath.Walk(dir, func(file string, info os.FileInfo, walkErr error) error {
		if walkErr == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, file)
			data, _ := ioutil.ReadFile(file)
			names, contents = append(names, filepath.ToSlash(rel)), append(contents, data)
		}
		return nil
	})
	airsyncRecord("HashDir", "prefix", prefix, "files", names, "contents", contents, "hash", h, "err", airsyncErr(err))
	return h, err
}

// HashZip is recorded with the zip file's bytes.
func airsyncRec_HashZip(zipfile string, hash Hash) (string, error) {
	h, err := HashZip(zipfile, hash)
	data, _ := ioutil.ReadFile(zipfile)
	airsyncRecord("HashZip", "zip", data, "hash", h, "err", airsyncErr(err))
	return h, err
}
`,

	"zip": ``,
}
