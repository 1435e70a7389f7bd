package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one local OS process the harness runs: a store or a service. It can be
// stopped and started again with the same command line (same ports, same data dir),
// which is what the chaos tests need. Every start appends to the same log file.
type process struct {
	name     string
	path     string
	args     []string
	env      []string // appended to os.Environ()
	dir      string   // working directory ("" = inherit)
	logPath  string
	cred     *syscall.Credential // run as another user (postgres when we are root)
	stopSig  syscall.Signal      // graceful stop signal; SIGTERM unless set
	stopWait time.Duration       // grace period before SIGKILL

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current run has exited
	waitErr error
}

// start runs the process in the background. It is an error to start a running process.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("%s: already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	fmt.Fprintf(logf, "=== harness %s: starting %s %s\n", time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))

	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Dir = p.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: stop/kill signal the whole group, so nothing the
		// process forked outlives it (kill also hunts down descendants that
		// left the group).
		Setpgid: true,
		// If the test binary dies without running its cleanups (panic, -timeout),
		// the kernel kills the process instead of leaving it orphaned.
		Pdeathsig:  syscall.SIGKILL,
		Credential: p.cred,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start %s: %w", p.name, p.path, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== harness %s: %s exited: %v\n", time.Now().Format(time.RFC3339Nano), p.name, exitDesc(err))
		logf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the last started run is still alive.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

// exited returns a channel closed when the current run exits (nil if never started).
func (p *process) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// signalGroup sends sig to the process group of the current run.
func (p *process) signalGroup(sig syscall.Signal) {
	if pid := p.pid(); pid > 0 {
		_ = syscall.Kill(-pid, sig)
	}
}

// killAll SIGKILLs the process group and every descendant of the process, even
// those that left the group: postgres' children each call setsid(2).
func (p *process) killAll() {
	pid := p.pid()
	if pid <= 0 {
		return
	}
	desc := descendants(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, d := range desc {
		_ = syscall.Kill(d, syscall.SIGKILL)
	}
}

// descendants lists the transitive children of pid, from /proc.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may contain spaces and parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], child)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		c := children[queue[0]]
		queue = queue[1:]
		out = append(out, c...)
		queue = append(queue, c...)
	}
	return out
}

// stop asks the process to exit (stopSig, default SIGTERM) and SIGKILLs its group
// after the grace period. Stopping a stopped process is a no-op.
func (p *process) stop() error {
	done := p.exited()
	if done == nil || isClosed(done) {
		p.reapGroup()
		return nil
	}
	sig := p.stopSig
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	wait := p.stopWait
	if wait == 0 {
		wait = 15 * time.Second
	}
	p.signalGroup(sig)
	select {
	case <-done:
		p.reapGroup()
		return nil
	case <-time.After(wait):
		p.killAll()
		<-done
		return fmt.Errorf("%s: did not exit %s after %v; killed", p.name, sig, wait)
	}
}

// kill SIGKILLs the process group and waits for the process to be reaped.
func (p *process) kill() {
	done := p.exited()
	if done == nil {
		return
	}
	p.killAll()
	<-done
}

// reapGroup SIGKILLs whatever is left in the last run's process group once its
// leader has exited (no-op when the group is empty).
func (p *process) reapGroup() { p.signalGroup(syscall.SIGKILL) }

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func exitDesc(err error) string {
	if err == nil {
		return "status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal " + ws.Signal().String()
		}
	}
	return err.Error()
}

// tailFile returns the last n lines of a file (or a note saying why it cannot).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	ring := make([]string, 0, n)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if len(ring) == n {
			ring = ring[1:]
		}
		ring = append(ring, sc.Text())
	}
	return strings.Join(ring, "\n")
}

var ports struct {
	sync.Mutex
	given map[int]bool
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and has not
// been handed out before in this test binary (so parallel tests do not collide).
func freePort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports.given[port] {
			ports.given[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port found")
}
