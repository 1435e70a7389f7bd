package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
)

// profileEnv names a directory: when set, BenchmarkLedgerIngest (the ledger)
// and BenchmarkGatewayOverhead (the gateway, at concurrency 50) run that
// service with -pprof, write a CPU profile of it taken during the measured
// phase to <service>.cpu.pprof there, and log the CPU time each process of
// the stack spent meanwhile (where the two cores went). Diagnostics only:
// the profile's own overhead lowers the figure a little.
const profileEnv = "SPENDLEDGER_BENCH_PROFILE"

// profileArgs are the harness options a profiled service needs.
func profileArgs(service string) []harness.Option {
	if os.Getenv(profileEnv) == "" {
		return nil
	}
	return []harness.Option{harness.WithServiceArgs(service, "--pprof")}
}

// stackServices are the product's services, whose CPU a profile logs.
var stackServices = []string{"gateway", "budget", "pricing", "ledger"}

// profiler captures where the CPU went while a benchmark ran.
type profiler struct {
	b       *testing.B
	dir     string
	service string
	// metricsURL is the ledger's /metrics, for its per-stage batch times
	// ("" when the ledger is not the one profiled).
	metricsURL string
	procs      map[string][]int // name -> pids whose CPU time is summed
	start      map[string]float64
	t0         time.Time
	done       chan struct{}
}

// startProfile begins sampling service; it returns nil when profiling is off.
func startProfile(b *testing.B, st *harness.Stack, service string, seconds int) *profiler {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	p := &profiler{b: b, dir: dir, service: service, procs: map[string][]int{}, done: make(chan struct{})}
	if service == "ledger" {
		p.metricsURL = st.Service("ledger").URL + "/metrics"
	}
	for _, s := range stackServices {
		if svc := st.Service(s); svc != nil && svc.PID() > 0 {
			p.procs[s] = []int{svc.PID()}
		}
	}
	p.procs["bench driver"] = []int{os.Getpid()}
	for name, u := range map[string]string{"nats-server": st.NATSURL, "redis-server": st.RedisURL, "postgres": st.PostgresURL} {
		pu, err := url.Parse(u)
		if err != nil {
			b.Fatal(err)
		}
		p.procs[name] = findProcs(name, pu.Port())
	}
	p.start = p.cpu()
	p.t0 = time.Now()
	go func() {
		defer close(p.done)
		resp, err := http.Get(st.Service(service).URL + "/debug/pprof/profile?seconds=" + strconv.Itoa(seconds))
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, service+".cpu.pprof"))
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			b.Logf("profile: %v", err)
		}
	}()
	return p
}

// stop logs each process's share of the CPU since startProfile (and, given
// the operations done meanwhile, its CPU per operation) and waits for the
// CPU profile to be written.
func (p *profiler) stop(ops int) {
	if p == nil {
		return
	}
	wall := time.Since(p.t0).Seconds()
	end := p.cpu()
	var sb strings.Builder
	fmt.Fprintf(&sb, "CPU seconds over %.2fs of wall time (2 cores = %.2f):", wall, 2*wall)
	total := 0.0
	for _, name := range append(slices.Clone(stackServices), "postgres", "redis-server", "nats-server", "bench driver") {
		if _, ok := p.procs[name]; !ok {
			continue
		}
		used := end[name] - p.start[name]
		total += used
		fmt.Fprintf(&sb, " %s %.2f (%.0f%% of one core", name, used, 100*used/wall)
		if ops > 0 {
			fmt.Fprintf(&sb, ", %.1f µs/op", 1e6*used/float64(ops))
		}
		sb.WriteString(");")
	}
	if ops > 0 {
		fmt.Fprintf(&sb, " all %.1f µs/op over %d ops", 1e6*total/float64(ops), ops)
	}
	p.b.Log(sb.String())
	if p.metricsURL != "" {
		p.b.Log(stageTimes(p.metricsURL))
	}
	<-p.done
	p.b.Logf("CPU profile of the %s: go tool pprof %s", p.service, filepath.Join(p.dir, p.service+".cpu.pprof"))
}

// cpu returns user+system CPU seconds per name; for postgres the postmaster
// and every backend it forked (children alive now).
func (p *profiler) cpu() map[string]float64 {
	out := map[string]float64{}
	for name, pids := range p.procs {
		for _, pid := range pids {
			out[name] += procCPU(pid)
			if name == "postgres" {
				for _, c := range children(pid) {
					out[name] += procCPU(c)
				}
			}
		}
	}
	return out
}

// findProcs returns the pids whose command line runs name with port among
// its arguments (the harness's local stores; none under Docker).
func findProcs(name, port string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		// Redis rewrites its title to "redis-server 127.0.0.1:PORT", one
		// argument: split on spaces too, and accept "host:PORT".
		args := strings.Fields(strings.ReplaceAll(string(b), "\x00", " "))
		if len(args) == 0 || filepath.Base(args[0]) != name {
			continue
		}
		for _, a := range args[1:] {
			if a == port || strings.HasSuffix(a, ":"+port) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

func children(ppid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// statFields returns /proc/pid/stat's fields after the command name, so
// f[0] is the state, f[1] the ppid, f[11] utime, f[12] stime.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// procCPU is a process's user+system CPU in seconds (clock ticks of 1/100 s,
// Linux's USER_HZ on every architecture Go supports here).
func procCPU(pid int) float64 {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

// stageTimes summarizes the ledger's ledger_batch_stage_seconds: total
// seconds and batches per stage.
func stageTimes(metricsURL string) string {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return "stage times: " + err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "stage times: " + err.Error()
	}
	sums, counts := map[string]string{}, map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		for suffix, into := range map[string]map[string]string{"_sum": sums, "_count": counts} {
			prefix := "ledger_batch_stage_seconds" + suffix + `{stage="`
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				if stage, v, ok := strings.Cut(rest, `"} `); ok {
					into[stage] = v
				}
			}
		}
	}
	var sb strings.Builder
	sb.WriteString("ledger batch stages (seconds, batches):")
	for _, stage := range []string{"decode", "insert", "project", "ack"} {
		fmt.Fprintf(&sb, " %s %s s / %s;", stage, sums[stage], counts[stage])
	}
	return sb.String()
}
