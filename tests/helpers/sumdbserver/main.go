// Command sumdbserver is a checksum database that behaves like the real one, for airsync's tests.
//
// What this is: a real golang.org/x/mod/sumdb server (sumdb.NewServer over our own ServerOps,
// hashes kept by golang.org/x/mod/sumdb/tlog, tree heads signed by golang.org/x/mod/sumdb/note),
// with a caching module proxy in front, all on one 127.0.0.1 port:
//
//	/<module>/@v/...            the GOPROXY tree in -root (static files)
//	/sumdb/<name>/supported     200, empty
//	/sumdb/<name>/lookup/...    the proxy's cache, else the database (which logs the module then)
//	/sumdb/<name>/tile/..., /latest   the database
//	/control/grow?n=K           log K unrelated records now; answers the new tree size
//	/control/stats              JSON: tree size and the distinct tree sizes lookups were answered at
//
// How it works, and why it looks like the real world: records are the module's two go.sum lines,
// computed from the zip and go.mod in -root exactly as sum.golang.org computes them (dirhash).
// The log starts with -pad unrelated records; the modules listed in -prelog are logged at startup,
// spread through that padding (a closure's records are scattered over the real log), and the proxy
// cache holds each one's lookup answer signed at the head of the moment it was cached (shortly
// after it was logged): OLDER heads, as proxy.golang.org answers from its cache. Any other module is
// logged on its first lookup, and the log grows by -grow records after every lookup the database
// answers itself, so no two live answers share a head. -foreign lists modules whose cached answers
// are signed by -foreign-skey instead (a proxy handing out another database's notes).
//
// It prints "listening http://127.0.0.1:PORT" on stdout once it accepts connections.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type db struct {
	root   string
	signer note.Signer

	mu      sync.Mutex
	hashes  []tlog.Hash
	records [][]byte
	ids     map[string]int64
	served  map[int64]bool // tree sizes lookups were answered at (live and cached)
	grow    int
	padded  int
}

func (d *db) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(d.hashes)) {
			return nil, fs.ErrNotExist
		}
		out[i] = d.hashes[x]
	}
	return out, nil
}

// appendLocked logs one record (d.mu held) and returns its id.
func (d *db) appendLocked(data []byte) int64 {
	id := int64(len(d.records))
	hs, err := tlog.StoredHashesForRecordHash(id, tlog.RecordHash(data), tlog.HashReaderFunc(d.ReadHashes))
	if err != nil {
		log.Fatal(err)
	}
	d.hashes = append(d.hashes, hs...)
	d.records = append(d.records, data)
	return id
}

func (d *db) padLocked(n int) {
	for i := 0; i < n; i++ {
		d.appendLocked([]byte(fmt.Sprintf("example.invalid/pad%d v1.0.0 h1:pad\n", d.padded)))
		d.padded++
	}
}

// signedAtLocked is the signed note of the tree of the first n records.
func (d *db) signedAtLocked(n int64, signer note.Signer) []byte {
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(d.ReadHashes))
	if err != nil {
		log.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: h}))}, signer)
	if err != nil {
		log.Fatal(err)
	}
	return msg
}

func (d *db) Signed(ctx context.Context) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.signedAtLocked(int64(len(d.records)), d.signer), nil
}

func (d *db) ReadRecords(ctx context.Context, id, n int64) ([][]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id < 0 || id+n > int64(len(d.records)) {
		return nil, fs.ErrNotExist
	}
	return d.records[id : id+n], nil
}

// gosum is the record sum.golang.org would log for m: its two go.sum lines.
func (d *db) gosum(m module.Version) ([]byte, error) {
	ep, err := module.EscapePath(m.Path)
	if err != nil {
		return nil, fs.ErrNotExist
	}
	ev, err := module.EscapeVersion(m.Version)
	if err != nil {
		return nil, fs.ErrNotExist
	}
	base := filepath.Join(d.root, filepath.FromSlash(ep), "@v", ev)
	zh, err := dirhash.HashZip(base+".zip", dirhash.DefaultHash)
	if err != nil {
		return nil, fs.ErrNotExist
	}
	mh, err := dirhash.DefaultHash([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return os.Open(base + ".mod") })
	if err != nil {
		return nil, fs.ErrNotExist
	}
	return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, zh, m.Path, m.Version, mh)), nil
}

// Lookup logs m on first sight (as sum.golang.org does).
func (d *db) Lookup(ctx context.Context, m module.Version) (int64, error) {
	d.mu.Lock()
	id, ok := d.ids[m.String()]
	d.mu.Unlock()
	if ok {
		return id, nil
	}
	data, err := d.gosum(m)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.ids[m.String()]; ok {
		return id, nil
	}
	id = d.appendLocked(data)
	d.ids[m.String()] = id
	return id, nil
}

func (d *db) ReadTileData(ctx context.Context, t tlog.Tile) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A tile beyond the current tree does not exist yet: 404, as the real server answers.
	if (t.N<<uint(t.H))+int64(t.W) > int64(len(d.records))>>uint(t.H*t.L) {
		return nil, fs.ErrNotExist
	}
	return tlog.ReadTileData(t, tlog.HashReaderFunc(d.ReadHashes))
}

func readList(path string) []module.Version {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	var out []module.Version
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, v, ok := strings.Cut(line, "@")
		if !ok {
			log.Fatalf("bad module line %q", line)
		}
		out = append(out, module.Version{Path: p, Version: v})
	}
	return out
}

func main() {
	root := flag.String("root", "", "GOPROXY tree of module files")
	name := flag.String("name", "", "database name (must match the key)")
	skey := flag.String("skey", "", "signer key")
	listen := flag.String("listen", "127.0.0.1:0", "address")
	pad := flag.Int("pad", 1000, "unrelated records logged first")
	prelog := flag.String("prelog", "", "file of path@version: logged at startup, answered from the proxy cache")
	grow := flag.Int("grow", 3, "records appended after every live lookup")
	seed := flag.Int64("seed", 1, "where prelogged records land in the padding")
	cacheLag := flag.Int("cache-lag", 50, "at most this many records after a prelogged one, the proxy cached it")
	foreign := flag.String("foreign", "", "file of path@version whose cached answers -foreign-skey signs")
	foreignKey := flag.String("foreign-skey", "", "another database's signer key")
	flag.Parse()
	if !strings.HasPrefix(*listen, "127.0.0.1:") {
		log.Fatal("listen on 127.0.0.1 only")
	}
	signer, err := note.NewSigner(*skey)
	if err != nil {
		log.Fatal(err)
	}
	if signer.Name() != *name {
		log.Fatalf("key name %q, database name %q", signer.Name(), *name)
	}
	d := &db{root: *root, signer: signer, ids: map[string]int64{}, served: map[int64]bool{}, grow: *grow}

	// Prelogged modules land at seeded positions inside the padding; each one's cached lookup
	// answer is signed at the head of the moment the proxy cached it, a little after.
	mods := readList(*prelog)
	foreigners := map[string]bool{}
	for _, m := range readList(*foreign) {
		foreigners[m.String()] = true
	}
	var otherSigner note.Signer
	if *foreignKey != "" {
		if otherSigner, err = note.NewSigner(*foreignKey); err != nil {
			log.Fatal(err)
		}
	}
	rng := rand.New(rand.NewSource(*seed))
	at := make([]int, len(mods))
	for i := range mods {
		at[i] = rng.Intn(*pad + 1)
	}
	sort.Ints(at)
	type pending struct {
		m    module.Version
		id   int64
		size int64
	}
	var cached []pending
	d.mu.Lock()
	for i, m := range mods {
		d.padLocked(at[i] - d.padded)
		data, err := d.gosum(m)
		if err != nil {
			log.Fatalf("prelog %s: %v", m, err)
		}
		id := d.appendLocked(data)
		d.ids[m.String()] = id
		cached = append(cached, pending{m, id, id + 1 + int64(rng.Intn(*cacheLag+1))})
	}
	d.padLocked(*pad - d.padded)
	cache := map[string][]byte{}
	for _, c := range cached {
		size := c.size
		if size > int64(len(d.records)) {
			size = int64(len(d.records))
		}
		s := signer
		if foreigners[c.m.String()] && otherSigner != nil {
			s = otherSigner
		}
		msg, _ := tlog.FormatRecord(c.id, d.records[c.id])
		ep, _ := module.EscapePath(c.m.Path)
		ev, _ := module.EscapeVersion(c.m.Version)
		cache["/lookup/"+ep+"@"+ev] = append(msg, d.signedAtLocked(size, s)...)
		d.served[size] = true
	}
	d.mu.Unlock()

	srv := sumdb.NewServer(d)
	prefix := "/sumdb/" + *name
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/supported", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, prefix)
		if strings.HasPrefix(p, "/lookup/") {
			d.mu.Lock()
			answer, ok := cache[p]
			d.mu.Unlock()
			if ok {
				w.Write(answer)
				return
			}
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		if !strings.HasPrefix(p, "/lookup/") {
			srv.ServeHTTP(w, r2)
			return
		}
		// A live answer is signed at the head of this moment; then the log moves on.
		rec := &recorder{header: http.Header{}}
		srv.ServeHTTP(rec, r2)
		d.mu.Lock()
		if _, _, treeMsg, err := tlog.ParseRecord(rec.body); err == nil {
			if tree, err := tlog.ParseTree(treeMsg); err == nil {
				d.served[tree.N] = true
			}
		}
		d.padLocked(d.grow)
		d.mu.Unlock()
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if rec.status != 0 {
			w.WriteHeader(rec.status)
		}
		w.Write(rec.body)
	})
	mux.HandleFunc("/control/grow", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > 10_000_000 {
			http.Error(w, "bad n", 400)
			return
		}
		d.mu.Lock()
		d.padLocked(n)
		size := len(d.records)
		d.mu.Unlock()
		fmt.Fprintf(w, "%d\n", size)
	})
	mux.HandleFunc("/control/stats", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		var sizes []int64
		for s := range d.served {
			sizes = append(sizes, s)
		}
		size := len(d.records)
		d.mu.Unlock()
		sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
		json.NewEncoder(w).Encode(map[string]any{"size": size, "served_sizes": sizes})
	})
	mux.Handle("/", http.FileServer(http.Dir(*root)))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening http://%s\n", ln.Addr())
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, mux))
}

type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }
