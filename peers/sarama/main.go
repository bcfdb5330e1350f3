// klamm's Sarama peer: the Go client github.com/IBM/sarama on the other side
// of klamm's interop tests. Records follow the interop pattern
// (peers/PATTERN.md, pattern.go).
//
//	pattern --partitions P --count N
//	    the pattern's records as JSON lines (offset = index), no broker involved
//	produce --bootstrap B --topic T --partitions P --count N --codec C --timeout-ms MS
//	    N records per partition, interleaved over partitions 0..P-1, through an
//	    AsyncProducer: acks=all, idempotent, Producer.Compression = C (none,
//	    gzip, snappy, lz4, zstd), Version = sarama.MaxVersion (v2 record batches
//	    with headers)
//	consume --bootstrap B --topic T --partitions P --count N --timeout-ms MS
//	        [--isolation read_uncommitted|read_committed] [--output dump|verify]
//	        [--max-mismatches M]
//	    reads partitions 0..P-1 from the oldest offset (one partition consumer
//	    each) until each has given N records and the last one sits just below
//	    the high watermark, or until the timeout. dump: one JSON line per
//	    record. verify: checks that partition p holds records 0..N-1 of the
//	    pattern at offsets 0..N-1 and prints the first M mismatches (default 10).
//	    Sarama does not say whether a timestamp is create or log-append time, so
//	    records carry "timestampType": null. Under read_committed a partition
//	    ending in a transaction marker never counts as caught up (the marker
//	    sits at the high watermark's offset - 1): this mode is for
//	    non-transactional topics.
//	group-consume --bootstrap B --group G --topics T[,T...] --timeout-ms MS
//	        [--strategy range|roundrobin|sticky|cooperative-sticky]
//	        [--session-timeout-ms 6000] [--heartbeat-interval-ms 500]
//	        [--max-poll-interval-ms 20000] [--client-id ID] [--max-records N]
//	    one member of group G (sarama.ConsumerGroup, classic protocol) subscribed
//	    to the topics (group.go): a JSON line per assignment, commit, revocation
//	    and record (peers/PATTERN.md, "Group members"); auto-commit off, marks
//	    committed before every revocation. Runs until stdin reaches its end, N
//	    records were processed, or the timeout passed (not ok); then leaves.
//	    --max-poll-interval-ms is Sarama's Rebalance.Timeout.
//
// Stdout carries JSON lines only, the last being a "summary" with "ok"; the
// exit status is 0 when ok, 1 when not, 2 for bad arguments, 3 when the
// watchdog (the timeout plus 15 s) had to end a run that hung. Diagnostics,
// Sarama's log among them, go to stderr.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

const watchdogGrace = 15 * time.Second

var (
	outMu sync.Mutex
	out   = bufio.NewWriterSize(os.Stdout, 1<<16)
)

// emit writes one JSON line to stdout.
func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(b)
	out.WriteByte('\n')
}

func flushOut() {
	outMu.Lock()
	defer outMu.Unlock()
	out.Flush()
}

// obj is a JSON object whose keys keep their order.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for n, e := range o {
		if n > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

type args struct {
	bootstrap, topic, codec, isolation, output string
	partitions, count, maxMismatches           int
	timeout                                    time.Duration

	// group-consume
	group, topics, strategy, clientID string
	sessionTimeout, heartbeatInterval time.Duration
	maxPollInterval                   time.Duration
	maxRecords                        int64
}

func usage(why string) {
	fmt.Fprintf(os.Stderr, "klamm-sarama-peer: %s\n", why)
	fmt.Fprintln(os.Stderr, "usage: klamm-sarama-peer pattern|produce|consume|group-consume --name value ...")
	fmt.Fprintln(os.Stderr, "       (the modes and their arguments are described in main.go)")
	os.Exit(2)
}

func parseArgs(mode string, argv []string) args {
	var a args
	var timeoutMs int
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.StringVar(&a.bootstrap, "bootstrap", "", "broker addresses, comma-separated")
	fs.StringVar(&a.topic, "topic", "", "topic")
	fs.StringVar(&a.codec, "codec", "none", "none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&a.isolation, "isolation", "read_uncommitted", "read_uncommitted or read_committed")
	fs.StringVar(&a.output, "output", "dump", "dump or verify")
	fs.IntVar(&a.partitions, "partitions", 0, "partitions 0..P-1")
	fs.IntVar(&a.count, "count", 0, "records per partition")
	fs.IntVar(&a.maxMismatches, "max-mismatches", 10, "mismatches printed in verify mode")
	fs.IntVar(&timeoutMs, "timeout-ms", 0, "bound on the run")
	var sessionMs, heartbeatMs, maxPollMs int
	fs.StringVar(&a.group, "group", "", "consumer group (group-consume)")
	fs.StringVar(&a.topics, "topics", "", "topics, comma-separated (group-consume)")
	fs.StringVar(&a.strategy, "strategy", "range", "range, roundrobin, sticky or cooperative-sticky")
	fs.StringVar(&a.clientID, "client-id", "klamm-sarama-peer", "client id")
	fs.IntVar(&sessionMs, "session-timeout-ms", 6000, "group session timeout")
	fs.IntVar(&heartbeatMs, "heartbeat-interval-ms", 500, "group heartbeat interval")
	fs.IntVar(&maxPollMs, "max-poll-interval-ms", 20000, "rebalance timeout")
	fs.Int64Var(&a.maxRecords, "max-records", 0, "stop after this many records (0: no limit)")
	if err := fs.Parse(argv); err != nil {
		usage(err.Error())
	}
	if fs.NArg() > 0 {
		usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	a.sessionTimeout = time.Duration(sessionMs) * time.Millisecond
	a.heartbeatInterval = time.Duration(heartbeatMs) * time.Millisecond
	a.maxPollInterval = time.Duration(maxPollMs) * time.Millisecond
	if mode == "group-consume" {
		if a.bootstrap == "" || a.group == "" || a.topics == "" || timeoutMs <= 0 {
			usage("--bootstrap, --group, --topics and --timeout-ms are required")
		}
		a.timeout = time.Duration(timeoutMs) * time.Millisecond
		return a
	}
	if a.partitions <= 0 || a.count < 0 {
		usage("--partitions and --count are required")
	}
	if mode != "pattern" {
		if a.bootstrap == "" || a.topic == "" || timeoutMs <= 0 {
			usage("--bootstrap, --topic and --timeout-ms are required")
		}
	}
	a.timeout = time.Duration(timeoutMs) * time.Millisecond
	return a
}

func main() {
	if len(os.Args) < 2 {
		usage("no mode given")
	}
	mode := os.Args[1]
	a := parseArgs(mode, os.Args[2:])
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	if mode != "pattern" {
		time.AfterFunc(a.timeout+watchdogGrace, func() {
			emit(obj{{"type", "summary"}, {"mode", mode}, {"ok", false},
				{"error", fmt.Sprintf("watchdog: still running %v after the timeout of %v", watchdogGrace, a.timeout)}})
			flushOut()
			fmt.Fprintln(os.Stderr, "klamm-sarama-peer: watchdog ends the run")
			os.Exit(3)
		})
	}
	var ok bool
	var err error
	switch mode {
	case "pattern":
		ok = pattern(a)
	case "produce":
		ok, err = produce(a)
	case "consume":
		ok, err = consume(a)
	case "group-consume":
		ok, err = groupConsume(a)
	default:
		usage(fmt.Sprintf("unknown mode %q", mode))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "klamm-sarama-peer: %v\n", err)
		emit(obj{{"type", "summary"}, {"mode", mode}, {"ok", false}, {"error", err.Error()}})
		ok = false
	}
	flushOut()
	if !ok {
		os.Exit(1)
	}
}

func recordLine(p int32, offset int64, key, value []byte, headers []hdr, ts int64, tsType *string) obj {
	hs := make([][2]any, 0, len(headers))
	for _, h := range headers {
		hs = append(hs, [2]any{h.key, h.value})
	}
	return obj{{"type", "record"}, {"partition", p}, {"offset", offset}, {"key", key},
		{"value", value}, {"headers", hs}, {"timestamp", ts}, {"timestampType", tsType}}
}

func pattern(a args) bool {
	createTime := "CreateTime"
	for p := int32(0); p < int32(a.partitions); p++ {
		for i := int64(0); i < int64(a.count); i++ {
			emit(recordLine(p, i, patternKey(p, i), patternValue(p, i), patternHeaders(p, i),
				patternTimestamp(i), &createTime))
		}
	}
	emit(obj{{"type", "summary"}, {"mode", "pattern"}, {"ok", true},
		{"partitions", a.partitions}, {"count", a.count}})
	return true
}

func newConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "klamm-sarama-peer"
	cfg.Version = sarama.MaxVersion
	return cfg
}

func brokers(a args) []string { return strings.Split(a.bootstrap, ",") }

func codecOf(name string) (sarama.CompressionCodec, error) {
	switch name {
	case "none":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return 0, fmt.Errorf("unknown codec %q", name)
}

// bytesOrNil keeps the pattern's null (nil) apart from empty: a nil Encoder
// is a null key or value for Sarama, a ByteEncoder of a non-nil empty slice
// an empty one.
func bytesOrNil(b []byte) sarama.Encoder {
	if b == nil {
		return nil
	}
	return sarama.ByteEncoder(b)
}

type sent struct {
	p int32
	i int64
}

func produce(a args) (bool, error) {
	started := time.Now()
	codec, err := codecOf(a.codec)
	if err != nil {
		return false, err
	}
	cfg := newConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Compression = codec
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	producer, err := sarama.NewAsyncProducer(brokers(a), cfg)
	if err != nil {
		return false, fmt.Errorf("new producer: %w", err)
	}

	offsets := make([][]int64, a.partitions)
	for p := range offsets {
		offsets[p] = make([]int64, a.count)
		for i := range offsets[p] {
			offsets[p][i] = -1
		}
	}
	go func() {
		for i := int64(0); i < int64(a.count); i++ {
			for p := int32(0); p < int32(a.partitions); p++ {
				msg := &sarama.ProducerMessage{
					Topic:     a.topic,
					Partition: p,
					Key:       bytesOrNil(patternKey(p, i)),
					Value:     bytesOrNil(patternValue(p, i)),
					Timestamp: time.UnixMilli(patternTimestamp(i)),
					Metadata:  sent{p, i},
				}
				for _, h := range patternHeaders(p, i) {
					msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(h.key), Value: h.value})
				}
				producer.Input() <- msg
			}
		}
	}()

	total := a.partitions * a.count
	results, failed := 0, 0
	firstError := ""
	deadline := time.NewTimer(a.timeout)
	timedOut := false
	for results < total && !timedOut {
		select {
		case m := <-producer.Successes():
			s := m.Metadata.(sent)
			offsets[s.p][s.i] = m.Offset
			results++
		case e := <-producer.Errors():
			results++
			failed++
			if firstError == "" {
				firstError = e.Error()
			}
		case <-deadline.C:
			timedOut = true
		}
	}
	if err := producer.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "klamm-sarama-peer: closing the producer: %v\n", err)
	}

	parts := []obj{}
	for p := range offsets {
		consecutive := true
		acked := 0
		for i, o := range offsets[p] {
			if o >= 0 {
				acked++
			}
			consecutive = consecutive && o >= 0 && o == offsets[p][0]+int64(i)
		}
		var first, last any
		if a.count > 0 {
			first, last = offsets[p][0], offsets[p][a.count-1]
		}
		parts = append(parts, obj{{"partition", p}, {"acked", acked}, {"first_offset", first},
			{"last_offset", last}, {"consecutive", consecutive}})
	}
	ok := !timedOut && failed == 0
	var fe any
	if firstError != "" {
		fe = firstError
	}
	emit(obj{{"type", "summary"}, {"mode", "produce"}, {"ok", ok}, {"topic", a.topic},
		{"codec", a.codec}, {"partitions", parts}, {"count", a.count}, {"written", results - failed},
		{"errors", failed}, {"first_error", fe}, {"timed_out", timedOut},
		{"sarama_version", cfg.Version.String()}, {"ms", time.Since(started).Milliseconds()}})
	return ok, nil
}

func consume(a args) (bool, error) {
	started := time.Now()
	cfg := newConfig()
	switch a.isolation {
	case "read_uncommitted":
		cfg.Consumer.IsolationLevel = sarama.ReadUncommitted
	case "read_committed":
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	default:
		return false, fmt.Errorf("unknown isolation %q", a.isolation)
	}
	if a.output != "dump" && a.output != "verify" {
		return false, fmt.Errorf("unknown output %q", a.output)
	}
	verify := a.output == "verify"
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	consumer, err := sarama.NewConsumer(brokers(a), cfg)
	if err != nil {
		return false, fmt.Errorf("new consumer: %w", err)
	}
	defer consumer.Close()

	stop := make(chan struct{})
	defer close(stop)
	messages := make(chan *sarama.ConsumerMessage)
	consumeErrors := make(chan *sarama.ConsumerError)
	pcs := make([]sarama.PartitionConsumer, a.partitions)
	for p := range pcs {
		pc, err := consumer.ConsumePartition(a.topic, int32(p), sarama.OffsetOldest)
		if err != nil {
			return false, fmt.Errorf("consume %s/%d: %w", a.topic, p, err)
		}
		defer pc.AsyncClose()
		pcs[p] = pc
		go func() {
			for m := range pc.Messages() {
				select {
				case messages <- m:
				case <-stop:
					return
				}
			}
		}()
		go func() {
			for e := range pc.Errors() {
				select {
				case consumeErrors <- e:
				case <-stop:
					return
				}
			}
		}()
	}

	seen := make([]int64, a.partitions)
	first := make([]int64, a.partitions)
	last := make([]int64, a.partitions)
	for p := range first {
		first[p], last[p] = -1, -1
	}
	var mismatches, outOfOrder, consumeErrorCount int64
	caughtUp, timedOut := false, false
	done := func() bool {
		for p, pc := range pcs {
			if seen[p] < int64(a.count) || last[p]+1 < pc.HighWaterMarkOffset() {
				return false
			}
		}
		return true
	}
	deadline := time.NewTimer(a.timeout)
	for !caughtUp && !timedOut {
		select {
		case m := <-messages:
			p := m.Partition
			if last[p] >= 0 && m.Offset <= last[p] {
				outOfOrder++
			}
			if first[p] < 0 {
				first[p] = m.Offset
			}
			last[p] = m.Offset
			headers := make([]hdr, 0, len(m.Headers))
			for _, h := range m.Headers {
				headers = append(headers, hdr{string(h.Key), h.Value})
			}
			index := seen[p]
			seen[p]++
			ts := m.Timestamp.UnixMilli()
			if !verify {
				emit(recordLine(p, m.Offset, m.Key, m.Value, headers, ts, nil))
			} else {
				var field, detail string
				switch {
				case m.Offset != index:
					field, detail = "offset", fmt.Sprintf("want %d got %d", index, m.Offset)
				case index >= int64(a.count):
					field, detail = "extra", fmt.Sprintf("a record beyond the %d expected", a.count)
				default:
					field, detail = patternDiff(p, index, m.Key, m.Value, headers, ts)
				}
				if field != "" {
					if mismatches < int64(a.maxMismatches) {
						emit(obj{{"type", "mismatch"}, {"partition", p}, {"offset", m.Offset},
							{"index", index}, {"field", field}, {"detail", detail}})
					}
					mismatches++
				}
			}
			caughtUp = done()
		case e := <-consumeErrors:
			consumeErrorCount++
			fmt.Fprintf(os.Stderr, "klamm-sarama-peer: consumer error: %v\n", e)
		case <-deadline.C:
			timedOut = true
		}
	}

	var extra int64
	complete := true
	parts := []obj{}
	for p, pc := range pcs {
		extra += max(0, seen[p]-int64(a.count))
		complete = complete && seen[p] >= int64(a.count)
		parts = append(parts, obj{{"partition", p}, {"count", seen[p]}, {"first_offset", first[p]},
			{"last_offset", last[p]}, {"high_water_mark", pc.HighWaterMarkOffset()}})
	}
	ok := complete && caughtUp && extra == 0 && mismatches == 0 && outOfOrder == 0
	emit(obj{{"type", "summary"}, {"mode", "consume"}, {"ok", ok}, {"topic", a.topic},
		{"isolation", a.isolation}, {"output", a.output}, {"count", a.count}, {"partitions", parts},
		{"caught_up", caughtUp}, {"extra", extra}, {"mismatches", mismatches},
		{"out_of_order", outOfOrder}, {"consumer_errors", consumeErrorCount}, {"timed_out", timedOut},
		{"sarama_version", cfg.Version.String()}, {"ms", time.Since(started).Milliseconds()}})
	return ok, nil
}
