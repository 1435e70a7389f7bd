package envflag

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedenceFlagThenEnvThenDefault(t *testing.T) {
	s := New("t", io.Discard)
	a := s.String("a", "A", "def-a", "")
	b := s.String("b", "B", "def-b", "")
	c := s.String("c", "C", "def-c", "")
	if err := s.Parse([]string{"-a", "flag-a"}, env(map[string]string{"A": "env-a", "B": "env-b"})); err != nil {
		t.Fatal(err)
	}
	if *a != "flag-a" || *b != "env-b" || *c != "def-c" {
		t.Fatalf("got a=%q b=%q c=%q; want flag-a env-b def-c", *a, *b, *c)
	}
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	s := New("t", io.Discard)
	s.Duration("timeout", "TIMEOUT", time.Second, "")
	err := s.Parse(nil, env(map[string]string{"TIMEOUT": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "TIMEOUT") {
		t.Fatalf("err = %v; want an error naming TIMEOUT", err)
	}
}

func TestStrayArgumentsAreRejected(t *testing.T) {
	s := New("t", io.Discard)
	if err := s.Parse([]string{"extra"}, env(nil)); err == nil {
		t.Fatal("want error for a stray argument")
	}
}
