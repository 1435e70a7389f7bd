// Package envflag binds command-line flags to environment variables.
//
// A flag's value comes from the command line if given there, else from its
// environment variable if set, else from its default. Every flag names its
// variable in its usage text, so `-help` documents both.
package envflag

import (
	"flag"
	"fmt"
	"io"
	"time"
)

// Set is a flag.FlagSet whose flags also read the environment.
type Set struct {
	fs  *flag.FlagSet
	env map[string]string // flag name -> environment variable
}

// New returns an empty Set for the named program. Errors are returned, not
// fatal, so a service's run function can report them.
func New(program string, out io.Writer) *Set {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(out)
	return &Set{fs: fs, env: map[string]string{}}
}

func (s *Set) usage(env, usage string) string {
	return fmt.Sprintf("%s (env %s)", usage, env)
}

// String defines a string flag read from env when not given.
func (s *Set) String(name, env, def, usage string) *string {
	p := s.fs.String(name, def, s.usage(env, usage))
	s.env[name] = env
	return p
}

// Int defines an int flag read from env when not given.
func (s *Set) Int(name, env string, def int, usage string) *int {
	p := s.fs.Int(name, def, s.usage(env, usage))
	s.env[name] = env
	return p
}

// Bool defines a bool flag read from env when not given.
func (s *Set) Bool(name, env string, def bool, usage string) *bool {
	p := s.fs.Bool(name, def, s.usage(env, usage))
	s.env[name] = env
	return p
}

// Duration defines a duration flag read from env when not given.
func (s *Set) Duration(name, env string, def time.Duration, usage string) *time.Duration {
	p := s.fs.Duration(name, def, s.usage(env, usage))
	s.env[name] = env
	return p
}

// Parse parses args, then fills every flag not given on the command line from
// its environment variable. getenv is os.Getenv outside tests.
func (s *Set) Parse(args []string, getenv func(string) string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", s.fs.Args())
	}
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	s.fs.VisitAll(func(f *flag.Flag) {
		env := s.env[f.Name]
		if err != nil || given[f.Name] || env == "" {
			return
		}
		if v := getenv(env); v != "" {
			if e := s.fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment variable %s: %w", env, e)
			}
		}
	})
	return err
}
