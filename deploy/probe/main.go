// Command probe is the container health check of the service images: it GETs
// a service's /readyz and exits 0 on 200 OK, 1 otherwise, printing why. The
// images are distroless (no shell, curl or wget), so an exec-form HEALTHCHECK
// needs a static binary of its own; this is it, standard library only.
//
//	probe                         GET http://127.0.0.1:<port of $HTTP_ADDR>/readyz
//	probe http://127.0.0.1:4000/readyz
//	probe -timeout 5s URL
//
// With no URL the port comes from HTTP_ADDR (the service's listen address, set
// in the image), and a wildcard or empty host is probed on 127.0.0.1.
//
// It is its own module (stdlib only, not in go.work): the Dockerfile builds it
// with GOWORK=off beside the service, and e2e/deploy builds and runs it in
// tests. It is not a service and imports nothing from the repository.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var url string
	switch fs.NArg() {
	case 0:
		u, err := defaultURL(getenv("HTTP_ADDR"))
		if err != nil {
			fmt.Fprintln(stderr, "probe:", err)
			return 2
		}
		url = u
	case 1:
		url = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "usage: probe [-timeout d] [URL]")
		return 2
	}
	if err := check(url, *timeout); err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		return 1
	}
	fmt.Fprintln(stdout, "probe: ready:", url)
	return 0
}

// defaultURL is /readyz on the port of addr, a host:port listen address.
func defaultURL(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("no URL given and HTTP_ADDR is not set")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("HTTP_ADDR %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// check GETs url and wants 200; otherwise the error carries the status and
// the start of the body (a service's /readyz names what is not ready).
func check(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
