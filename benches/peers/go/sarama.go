package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

var saramaVersion = moduleVersion("github.com/IBM/sarama")

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none":   sarama.CompressionNone,
	"gzip":   sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy,
	"lz4":    sarama.CompressionLZ4,
	"zstd":   sarama.CompressionZSTD,
}

// saramaConfig maps the perf settings onto Sarama's configuration.
//
// Sarama has no per-partition linger: its producer gathers records per
// broker and flushes every Flush.Frequency (linger.ms), or when one
// partition's batch would pass Producer.MaxMessageBytes (batch.size). With
// idempotence Sarama needs Net.MaxOpenRequests = 1 (Java allows 5).
func saramaConfig(a *args) (*sarama.Config, error) {
	c := sarama.NewConfig()
	c.Version = sarama.MaxVersion
	c.ClientID = "klamm-perf-sarama"
	switch acks := a.x.take("acks", "all"); acks {
	case "all", "-1":
		c.Producer.RequiredAcks = sarama.WaitForAll
	case "1":
		c.Producer.RequiredAcks = sarama.WaitForLocal
	case "0":
		c.Producer.RequiredAcks = sarama.NoResponse
	default:
		return nil, badArgs{fmt.Errorf("-X acks=%s", acks)}
	}
	idem, err := a.x.takeBool("enable.idempotence", false)
	if err != nil {
		return nil, badArgs{err}
	}
	if idem {
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
	}
	codec, ok := saramaCodecs[a.codec]
	if !ok {
		return nil, badArgs{fmt.Errorf("unknown compression.type %s", a.codec)}
	}
	c.Producer.Compression = codec
	if a.codec != "none" {
		level, err := a.x.takeInt("compression."+a.codec+".level", sarama.CompressionLevelDefault)
		if err != nil {
			return nil, badArgs{err}
		}
		c.Producer.CompressionLevel = level
	}
	batch, err := a.x.takeInt("batch.size", c.Producer.MaxMessageBytes)
	if err != nil {
		return nil, badArgs{err}
	}
	c.Producer.MaxMessageBytes = batch
	linger, err := a.x.takeInt("linger.ms", 0)
	if err != nil {
		return nil, badArgs{err}
	}
	c.Producer.Flush.Frequency = time.Duration(linger) * time.Millisecond
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Consumer.Return.Errors = true
	// Sarama checks every fetched batch's CRC and has no setting to skip
	// it: only check.crcs=true can be honoured.
	if crcs, err := a.x.takeBool("check.crcs", true); err != nil {
		return nil, badArgs{err}
	} else if !crcs {
		return nil, badArgs{fmt.Errorf("Sarama always checks CRCs: -X check.crcs=false cannot be honoured")}
	}
	if err := a.x.rest("Sarama"); err != nil {
		return nil, badArgs{err}
	}
	return c, nil
}

func runSarama(a *args) (outcome, error) {
	cfg, err := saramaConfig(a)
	if err != nil {
		return outcome{}, err
	}
	brokers := strings.Split(a.brokers, ",")
	if a.mode == "produce" {
		return saramaProduce(a, cfg, brokers)
	}
	return saramaConsume(a, cfg, brokers)
}

func saramaProduce(a *args, cfg *sarama.Config, brokers []string) (outcome, error) {
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return outcome{}, err
	}
	lat := make([]int64, 0, a.records)
	var failed error
	var nfailed int
	var bytes int64
	done := make(chan struct{})
	// One reader of both channels: a delivery report per record.
	go func() {
		defer close(done)
		for got := 0; got < a.records; got++ {
			select {
			case m := <-p.Successes():
				lat = append(lat, time.Since(m.Timestamp).Nanoseconds())
				bytes += int64(m.Value.Length())
			case e := <-p.Errors():
				nfailed++
				if failed == nil {
					failed = e.Err
				}
			}
		}
	}()
	cpu0 := cpuSeconds()
	start := time.Now()
	deadline := time.After(a.timeout)
	for i := 0; i < a.records; i++ {
		pace(a, start, i)
		m := &sarama.ProducerMessage{
			Topic:     a.topic,
			Partition: int32(i % a.partitions),
			Value:     sarama.ByteEncoder(a.payloads[i%len(a.payloads)]),
			Timestamp: time.Now(),
		}
		select {
		case p.Input() <- m:
		case <-deadline:
			return outcome{}, fmt.Errorf("timed out after sending %d records", i)
		}
	}
	select {
	case <-done:
	case <-deadline:
		return outcome{}, fmt.Errorf("timed out waiting for delivery reports")
	}
	secs := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	if err := p.Close(); err != nil && failed == nil {
		failed = err
	}
	if failed != nil {
		return outcome{}, fmt.Errorf("%d records failed, the first: %v", nfailed, failed)
	}
	return outcome{records: len(lat), bytes: bytes, secs: secs, cpu: cpu, latNs: lat}, nil
}

func saramaConsume(a *args, cfg *sarama.Config, brokers []string) (outcome, error) {
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		return outcome{}, err
	}
	defer c.Close()
	var (
		total, bytes, sum atomic.Int64
		first             atomic.Int64
		once              sync.Once
		errMu             sync.Mutex
		firstErr          error
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allDone := make(chan struct{})
	want := int64(a.records)
	cpu0 := cpuSeconds()
	start := time.Now()
	first.Store(-1)
	var wg sync.WaitGroup
	for p := 0; p < a.partitions; p++ {
		pc, err := c.ConsumePartition(a.topic, int32(p), sarama.OffsetOldest)
		if err != nil {
			return outcome{}, fmt.Errorf("partition %d: %v", p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case m := <-pc.Messages():
					first.CompareAndSwap(-1, time.Since(start).Nanoseconds())
					bytes.Add(int64(len(m.Value)))
					sum.Add(checksum(m.Value))
					if total.Add(1) >= want {
						once.Do(func() { close(allDone) })
					}
				case e := <-pc.Errors():
					errMu.Lock()
					if firstErr == nil {
						firstErr = e
					}
					errMu.Unlock()
					once.Do(func() { close(allDone) })
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	select {
	case <-allDone:
	case <-time.After(a.timeout):
		return outcome{}, fmt.Errorf("timed out after %d of %d records", total.Load(), want)
	}
	elapsed := time.Since(start)
	cpu := cpuSeconds() - cpu0
	cancel()
	wg.Wait()
	if firstErr != nil {
		return outcome{}, firstErr
	}
	fmt.Fprintf(os.Stderr, "sarama: first record after %v\n", time.Duration(first.Load()))
	return outcome{records: int(total.Load()), bytes: bytes.Load(), secs: elapsed.Seconds(), cpu: cpu, checksum: sum.Load()}, nil
}
