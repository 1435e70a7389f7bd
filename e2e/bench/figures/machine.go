package figures

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Facts the load drivers record: the versions of the servers they ran
// against, asked of the servers themselves.
const (
	FactNATSVersion     = "nats_version"
	FactPostgresVersion = "postgres_version"
	FactRedisVersion    = "redis_version"
)

// Machine is what the figures were measured on.
type Machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	RAM      string `json:"ram"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	NATS     string `json:"nats"`
	Postgres string `json:"postgres"`
	Redis    string `json:"redis"`
}

// DetectMachine describes this machine (Linux /proc, /etc/os-release) and
// takes the server versions from the run's facts. What cannot be read is
// "unknown", never guessed.
func DetectMachine(facts map[string]string) Machine {
	or := func(v string) string {
		if v == "" {
			return "unknown"
		}
		return v
	}
	return Machine{
		CPU:      or(firstField("/proc/cpuinfo", "model name", ':')),
		Cores:    runtime.NumCPU(),
		RAM:      or(memTotal()),
		OS:       or(strings.Trim(firstField("/etc/os-release", "PRETTY_NAME", '='), `"`)),
		Kernel:   or(readTrim("/proc/sys/kernel/osrelease")),
		Go:       runtime.Version(),
		NATS:     or(facts[FactNATSVersion]),
		Postgres: or(facts[FactPostgresVersion]),
		Redis:    or(facts[FactRedisVersion]),
	}
}

// firstField returns the value of the first "key<sep>value" line of path.
func firstField(path, key string, sep byte) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memTotal() string {
	kb := strings.TrimSuffix(firstField("/proc/meminfo", "MemTotal", ':'), " kB")
	n, err := strconv.ParseInt(strings.TrimSpace(kb), 10, 64)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
