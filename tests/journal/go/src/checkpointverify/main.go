// checkpointverify checks Gatehouse checkpoints with tools nobody at Gatehouse wrote:
// golang.org/x/mod/sumdb/note (the signed note) and golang.org/x/mod/sumdb/tlog (RFC 6962 proofs).
//
//	checkpointverify VERIFIER_KEY OLD_CHECKPOINT NEW_CHECKPOINT PROOF_HEX...
//
// opens both notes with the key, parses origin, size and root, and checks that the
// hashes (the consistency proof, RFC 6962 §2.1.2 order) prove NEW extends OLD.
// It prints "OK <origin> <old size> <new size>" or one line on stderr and exits 1.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func open(verifier note.Verifier, path string) checkpoint {
	msg, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail(fmt.Errorf("%s: %v", path, err))
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail(fmt.Errorf("%s: not a checkpoint", path))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail(err)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail(fmt.Errorf("%s: bad root hash", path))
	}
	var root tlog.Hash
	copy(root[:], raw)
	return checkpoint{lines[0], size, root}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: checkpointverify VERIFIER_KEY OLD NEW PROOF_HEX..."))
	}
	verifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fail(err)
	}
	old, cur := open(verifier, os.Args[2]), open(verifier, os.Args[3])
	if old.origin != cur.origin {
		fail(fmt.Errorf("origins differ: %q, %q", old.origin, cur.origin))
	}
	var proof tlog.TreeProof
	for _, h := range os.Args[4:] {
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != tlog.HashSize {
			fail(fmt.Errorf("bad proof hash %q", h))
		}
		var hash tlog.Hash
		copy(hash[:], raw)
		proof = append(proof, hash)
	}
	if err := tlog.CheckTree(proof, cur.size, cur.root, old.size, old.root); err != nil {
		fail(err)
	}
	fmt.Printf("OK %s %d %d\n", cur.origin, old.size, cur.size)
}
