// Package sizetest keeps a package small enough to hold in one's head: a test of the
// package calls Check, which fails on a source file or function past the given limits
// (no file in reporter/ or executor/ over ~300 lines, no function over ~80).
package sizetest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"testing"
)

// Limits are the largest sizes allowed, in lines.
type Limits struct {
	File int // a .go file, tests included (split tests by stage too)
	Func int // a function or function literal
}

// Check reports every file and function of the package in dir past lim.
func Check(t testing.TB, dir string, lim Limits) {
	t.Helper()
	problems, err := Problems(dir, lim)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Problems lists what in dir's .go files is past lim, one line each.
func Problems(dir string, lim Limits) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		base := filepath.Base(name)
		if n := fset.Position(f.End()).Line; n > lim.File {
			out = append(out, fmt.Sprintf("%s: %d lines, over %d", base, n, lim.File))
		}
		out = append(out, longFuncs(fset, f, base, lim.Func)...)
	}
	return out, nil
}

func longFuncs(fset *token.FileSet, f *ast.File, base string, limit int) []string {
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		var body *ast.BlockStmt
		name := "func literal"
		switch x := n.(type) {
		case *ast.FuncDecl:
			body, name = x.Body, x.Name.Name
		case *ast.FuncLit:
			body = x.Body
		}
		if body == nil {
			return true
		}
		from, to := fset.Position(n.Pos()).Line, fset.Position(body.Rbrace).Line
		if n := to - from + 1; n > limit {
			out = append(out, fmt.Sprintf("%s:%d: %s is %d lines, over %d", base, from, name, n, limit))
		}
		return true
	})
	return out
}
