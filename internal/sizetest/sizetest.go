// Package sizetest keeps the code small enough to hold in one's head: every Go file of the
// repository, and every function in it, within a number of lines, but for a few exceptions
// that say why. Its own test (module_test.go) holds the limits and the exceptions and checks
// the whole repository once per `go test ./...`.
package sizetest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Limits are the largest sizes allowed, in lines.
type Limits struct {
	File int // a .go file
	Func int // a function or function literal, from its first line to its closing brace
}

// Policy says which limits a file has and what is excepted from them.
type Policy struct {
	Code Limits // production code
	Test Limits // test code: IsTest says which
	// IsTest reports whether a file, by its slash-separated path from the root, is test code.
	IsTest func(path string) bool
	// Exceptions name what may stay over its limits, each with the reason: "path" for a
	// file, "path:Func" (methods "path:Type.Method") for a function and the function
	// literals inside it.
	Exceptions map[string]string
}

// Problems lists, one line each, what under root is over its limits and not excepted, and
// every exception nothing is over its limits for any more (the list only shrinks). It reads
// every .go file below root but those in directories named testdata or starting with "."
// or "_" (as the go command does), and generated ones.
func (p Policy) Problems(root string) ([]string, error) {
	var out []string
	used := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		over, err := p.fileProblems(path, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		for _, o := range over {
			if _, ok := p.Exceptions[o.key]; ok {
				used[o.key] = true
				continue
			}
			out = append(out, o.text)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for key, why := range p.Exceptions {
		if !used[key] {
			out = append(out, fmt.Sprintf("%s is within its limits now, or gone: remove its exception (%q)", key, why))
		}
	}
	slices.Sort(out)
	return out, nil
}

// over is one thing past its limit: key is what an exception names.
type over struct{ key, text string }

var generated = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

func (p Policy) fileProblems(path, rel string) ([]over, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if generated.Match(src) {
		return nil, nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", rel, err)
	}
	lim := p.Code
	if p.IsTest != nil && p.IsTest(rel) {
		lim = p.Test
	}
	var out []over
	if n := fset.Position(f.End()).Line; n > lim.File {
		out = append(out, over{rel, fmt.Sprintf("%s: %d lines, over %d", rel, n, lim.File)})
	}
	return append(out, longFuncs(fset, f, rel, lim.Func)...), nil
}

// longFuncs lists the functions and function literals of f over limit lines. A literal is
// keyed by the declaration it sits in.
func longFuncs(fset *token.FileSet, f *ast.File, rel string, limit int) []over {
	var out []over
	check := func(n ast.Node, body *ast.BlockStmt, decl, what string) {
		from, to := fset.Position(n.Pos()).Line, fset.Position(body.Rbrace).Line
		if lines := to - from + 1; lines > limit {
			out = append(out, over{rel + ":" + decl, fmt.Sprintf("%s:%d: %s is %d lines, over %d", rel, from, what, lines, limit)})
		}
	}
	for _, d := range f.Decls {
		decl := "package level"
		if fd, ok := d.(*ast.FuncDecl); ok {
			decl = funcName(fd)
		}
		ast.Inspect(d, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.FuncDecl:
				if x.Body != nil {
					check(x, x.Body, decl, decl)
				}
			case *ast.FuncLit:
				check(x, x.Body, decl, "a func literal in "+decl)
			}
			return true
		})
	}
	return out
}

// funcName is "Name", or "Type.Name" for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
