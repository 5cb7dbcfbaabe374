package main

import (
	"strings"
	"testing"
)

func TestParseSecretInputs(t *testing.T) {
	got, err := parseSecretInputs("rotate=password,key; other=x")
	if err != nil || strings.Join(got["rotate"], ",") != "password,key" || got["other"][0] != "x" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseSecretInputs("rotate"); err == nil {
		t.Fatal("want an error")
	}
}
