// klamm-go-perf: Sarama and franz-go under the perf protocol of
// ../PERF.md, so that scripts/perf-compare can run them next to klamm,
// rdkafka and the Java client with the same workload.
//
//	klamm-go-perf --client sarama|franz-go --brokers B --topic T --mode produce|consume
//	    --records N --partitions P --size S --payloads FILE [--rate R] [--timeout-s S] [-X k=v]...
//
// Stdout carries one PERF line; diagnostics go to stderr. Exit status 0 when
// every record was delivered (or read), 1 when not, 2 for bad arguments or a
// setting the client cannot honour.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// settings are the -X properties, Java names; each client takes the keys it
// can honour out of the map and the rest is refused.
type settings map[string]string

func (s settings) take(key, def string) string {
	v, ok := s[key]
	if !ok {
		return def
	}
	delete(s, key)
	return v
}

func (s settings) takeInt(key string, def int) (int, error) {
	v := s.take(key, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("-X %s=%s: %v", key, v, err)
	}
	return n, nil
}

func (s settings) takeBool(key string, def bool) (bool, error) {
	v := s.take(key, strconv.FormatBool(def))
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("-X %s=%s: %v", key, v, err)
	}
	return b, nil
}

// rest fails when keys are left that the client did not take.
func (s settings) rest(client string) error {
	if len(s) == 0 {
		return nil
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Errorf("%s cannot honour %s", client, strings.Join(keys, ", "))
}

type kvFlag struct{ s settings }

func (k kvFlag) String() string { return "" }
func (k kvFlag) Set(v string) error {
	key, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("-X %s: want key=value", v)
	}
	k.s[key] = val
	return nil
}

type args struct {
	client, brokers, topic, mode, payloadsPath string
	records                                    int
	partitions, size                           int
	timeout                                    time.Duration
	rate                                       float64
	x                                          settings
	payloads                                   [][]byte
	codec                                      string
}

// badArgs is an error of the arguments or settings (exit status 2).
type badArgs struct{ error }

func parse() (*args, error) {
	a := &args{x: settings{}}
	fs := flag.NewFlagSet("klamm-go-perf", flag.ContinueOnError)
	fs.StringVar(&a.client, "client", "", "sarama or franz-go")
	fs.StringVar(&a.brokers, "brokers", "", "bootstrap HOST:PORT")
	fs.StringVar(&a.topic, "topic", "", "topic")
	fs.StringVar(&a.mode, "mode", "", "produce or consume")
	fs.IntVar(&a.records, "records", 1000000, "records")
	fs.IntVar(&a.partitions, "partitions", 6, "partitions")
	fs.IntVar(&a.size, "size", 100, "payload size in bytes")
	fs.StringVar(&a.payloadsPath, "payloads", "", "payload file")
	secs := fs.Int("timeout-s", 300, "give up after this many seconds")
	fs.Float64Var(&a.rate, "rate", 0, "records per second offered (0: as fast as accepted)")
	fs.Var(kvFlag{a.x}, "X", "key=value (Java property names)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return nil, badArgs{err}
	}
	a.timeout = time.Duration(*secs) * time.Second
	if a.brokers == "" || a.topic == "" || a.payloadsPath == "" {
		return nil, badArgs{errors.New("--brokers, --topic and --payloads are required")}
	}
	if a.mode != "produce" && a.mode != "consume" {
		return nil, badArgs{fmt.Errorf("unknown --mode %q", a.mode)}
	}
	if a.records < 1 || a.partitions < 1 || a.size < 1 {
		return nil, badArgs{errors.New("--records, --partitions and --size must be positive")}
	}
	data, err := os.ReadFile(a.payloadsPath)
	if err != nil {
		return nil, badArgs{err}
	}
	if len(data) == 0 || len(data)%a.size != 0 {
		return nil, badArgs{fmt.Errorf("%s: %d bytes is not a whole number of %d-byte payloads", a.payloadsPath, len(data), a.size)}
	}
	for off := 0; off < len(data); off += a.size {
		a.payloads = append(a.payloads, data[off:off+a.size:off+a.size])
	}
	a.codec = a.x.take("compression.type", "none")
	return a, nil
}

// pace waits until record i is due (i / rate seconds after start).
func pace(a *args, start time.Time, i int) {
	if a.rate <= 0 {
		return
	}
	due := start.Add(time.Duration(float64(i) / a.rate * 1e9))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// checksum is the perf protocol's value checksum of one record.
func checksum(v []byte) int64 {
	if len(v) == 0 {
		return 0
	}
	return 131*int64(len(v)) + 7*int64(v[0]) + int64(v[len(v)-1])
}

// cpuSeconds is the process's user + system CPU time (every thread).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// outcome is what a run measured.
type outcome struct {
	records  int
	bytes    int64
	secs     float64
	cpu      float64
	latNs    []int64
	checksum int64
}

func pct(sorted []int64, p float64) any {
	if len(sorted) == 0 {
		return nil
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return float64(sorted[rank-1]) / 1e6
}

func report(a *args, version string, o outcome) {
	sort.Slice(o.latNs, func(i, j int) bool { return o.latNs[i] < o.latNs[j] })
	line, _ := json.Marshal(map[string]any{
		"client":   a.client,
		"version":  version,
		"mode":     a.mode,
		"codec":    a.codec,
		"records":  o.records,
		"bytes":    o.bytes,
		"size":     a.size,
		"secs":     o.secs,
		"cpu_s":    o.cpu,
		"p50_ms":   pct(o.latNs, 50),
		"p99_ms":   pct(o.latNs, 99),
		"p999_ms":  pct(o.latNs, 99.9),
		"checksum": o.checksum,
	})
	fmt.Fprintf(os.Stderr, "%s %s: %d records in %.3f s, CPU %.3f s\n", a.client, a.mode, o.records, o.secs, o.cpu)
	fmt.Printf("PERF %s\n", line)
}

func main() {
	a, err := parse()
	if err != nil {
		fmt.Fprintln(os.Stderr, "klamm-go-perf:", err)
		os.Exit(2)
	}
	var (
		o       outcome
		version string
	)
	switch a.client {
	case "sarama":
		version = saramaVersion
		o, err = runSarama(a)
	case "franz-go":
		version = franzVersion
		o, err = runFranz(a)
	default:
		err = badArgs{fmt.Errorf("unknown --client %q (sarama or franz-go)", a.client)}
	}
	var bad badArgs
	if errors.As(err, &bad) {
		fmt.Fprintln(os.Stderr, "klamm-go-perf:", err)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "klamm-go-perf: %s %s: %v\n", a.client, a.mode, err)
		os.Exit(1)
	}
	report(a, version, o)
}

// moduleVersion is the version of a dependency as built into this binary.
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range info.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "unknown"
}
