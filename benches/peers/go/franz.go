package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

var franzVersion = moduleVersion("github.com/twmb/franz-go")

// franzOptions maps the perf settings onto franz-go's options: batch.size
// is ProducerBatchMaxBytes (per partition, as in Java), linger.ms is
// ProducerLinger. Everything else stays at franz-go's defaults
// (MaxBufferedRecords 10,000 among them).
func franzOptions(a *args) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(a.brokers, ",")...),
		kgo.ClientID("klamm-perf-franz-go"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
	if os.Getenv("KLAMM_PERF_DEBUG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	switch acks := a.x.take("acks", "all"); acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		return nil, badArgs{fmt.Errorf("-X acks=%s", acks)}
	}
	idem, err := a.x.takeBool("enable.idempotence", false)
	if err != nil {
		return nil, badArgs{err}
	}
	if !idem {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	var codec kgo.CompressionCodec
	switch a.codec {
	case "none":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, badArgs{fmt.Errorf("unknown compression.type %s", a.codec)}
	}
	if a.codec != "none" {
		if _, ok := a.x["compression."+a.codec+".level"]; ok {
			level, err := a.x.takeInt("compression."+a.codec+".level", 0)
			if err != nil {
				return nil, badArgs{err}
			}
			codec = codec.WithLevel(level)
		}
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if _, ok := a.x["batch.size"]; ok {
		batch, err := a.x.takeInt("batch.size", 0)
		if err != nil {
			return nil, badArgs{err}
		}
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(batch)))
	}
	if _, ok := a.x["linger.ms"]; ok {
		linger, err := a.x.takeInt("linger.ms", 0)
		if err != nil {
			return nil, badArgs{err}
		}
		opts = append(opts, kgo.ProducerLinger(time.Duration(linger)*time.Millisecond))
	}
	// tansu 0.6.0 drops the connection on some of franz-go's ApiVersions
	// v5 requests (the ones to a broker found in Metadata); the harness
	// caps the version there, and says so.
	if _, ok := a.x["franz.apiversions.max"]; ok {
		max, err := a.x.takeInt("franz.apiversions.max", 0)
		if err != nil {
			return nil, badArgs{err}
		}
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(18, int16(max))
		opts = append(opts, kgo.MaxVersions(vs))
	}
	// Fetched batches' CRCs are checked unless told otherwise, as in Java.
	crcs, err := a.x.takeBool("check.crcs", true)
	if err != nil {
		return nil, badArgs{err}
	}
	if !crcs {
		opts = append(opts, kgo.DisableFetchCRCValidation())
	}
	if err := a.x.rest("franz-go"); err != nil {
		return nil, badArgs{err}
	}
	return opts, nil
}

func runFranz(a *args) (outcome, error) {
	opts, err := franzOptions(a)
	if err != nil {
		return outcome{}, err
	}
	if a.mode == "consume" {
		offsets := make(map[int32]kgo.Offset, a.partitions)
		for p := 0; p < a.partitions; p++ {
			offsets[int32(p)] = kgo.NewOffset().AtStart()
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.topic: offsets}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return outcome{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	if a.mode == "produce" {
		return franzProduce(ctx, a, cl)
	}
	return franzConsume(ctx, a, cl)
}

func franzProduce(ctx context.Context, a *args, cl *kgo.Client) (outcome, error) {
	var (
		mu      sync.Mutex
		lat     = make([]int64, 0, a.records)
		bytes   int64
		nfailed int
		failed  error
	)
	// One promise for every record: the record carries its send time.
	promise := func(r *kgo.Record, err error) {
		d := time.Since(r.Timestamp).Nanoseconds()
		mu.Lock()
		if err != nil {
			nfailed++
			if failed == nil {
				failed = err
			}
		} else {
			lat = append(lat, d)
			bytes += int64(len(r.Value))
		}
		mu.Unlock()
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	for i := 0; i < a.records; i++ {
		pace(a, start, i)
		cl.Produce(ctx, &kgo.Record{
			Topic:     a.topic,
			Partition: int32(i % a.partitions),
			Value:     a.payloads[i%len(a.payloads)],
			Timestamp: time.Now(),
		}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return outcome{}, fmt.Errorf("flush: %v", err)
	}
	secs := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		return outcome{}, fmt.Errorf("%d records failed, the first: %v", nfailed, failed)
	}
	return outcome{records: len(lat), bytes: bytes, secs: secs, cpu: cpu, latNs: lat}, nil
}

func franzConsume(ctx context.Context, a *args, cl *kgo.Client) (outcome, error) {
	var total, bytes, sum int64
	var first time.Duration = -1
	cpu0 := cpuSeconds()
	start := time.Now()
	for total < int64(a.records) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return outcome{}, fmt.Errorf("timed out after %d of %d records", total, a.records)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return outcome{}, fmt.Errorf("partition %d: %v", errs[0].Partition, errs[0].Err)
		}
		if first < 0 && !fetches.Empty() {
			first = time.Since(start)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			total++
			bytes += int64(len(r.Value))
			sum += checksum(r.Value)
		})
	}
	elapsed := time.Since(start)
	cpu := cpuSeconds() - cpu0
	fmt.Fprintf(os.Stderr, "franz-go: first record after %v\n", first)
	return outcome{records: int(total), bytes: bytes, secs: elapsed.Seconds(), cpu: cpu, checksum: sum}, nil
}
