// klamm's goka peer: goka's own emitter and partitioner, for the test that
// a key lands on the same partition whether Go goka or klamm-goka writes it.
//
//	klamm-goka-peer place --partitions N --keys a,b,c
//	    prints one JSON line per key: {"key":..., "partition":...}, the
//	    partition goka's emitter picks (no broker needed)
//	klamm-goka-peer emit --brokers host:port --topic T --keys a,b,c
//	    writes value "go:<key>" under each key with goka.NewEmitter and
//	    prints {"ok":true,"emitted":N}
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "klamm-goka-peer: "+format+"\n", args...)
	os.Exit(1)
}

func printJSON(v interface{}) {
	line, err := json.Marshal(v)
	if err != nil {
		fail("encoding output: %v", err)
	}
	fmt.Println(string(line))
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: klamm-goka-peer place|emit [flags]")
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	brokers := flags.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma separated")
	topic := flags.String("topic", "", "the topic to emit to")
	keys := flags.String("keys", "", "the keys, comma separated")
	partitions := flags.Int("partitions", 1, "partition count (place)")
	if err := flags.Parse(os.Args[2:]); err != nil {
		fail("%v", err)
	}
	list := strings.Split(*keys, ",")

	switch mode {
	case "place":
		partitioner := sarama.NewCustomHashPartitioner(goka.DefaultHasher())("place")
		for _, k := range list {
			msg := &sarama.ProducerMessage{Key: sarama.StringEncoder(k)}
			p, err := partitioner.Partition(msg, int32(*partitions))
			if err != nil {
				fail("placing %q: %v", k, err)
			}
			printJSON(map[string]interface{}{"key": k, "partition": p})
		}
	case "emit":
		if *topic == "" {
			fail("emit needs --topic")
		}
		config := goka.DefaultConfig()
		config.Version = sarama.V3_0_0_0
		goka.ReplaceGlobalConfig(config)
		emitter, err := goka.NewEmitter(strings.Split(*brokers, ","), goka.Stream(*topic), new(codec.String))
		if err != nil {
			fail("creating the emitter: %v", err)
		}
		for _, k := range list {
			if err := emitter.EmitSync(k, "go:"+k); err != nil {
				fail("emitting %q: %v", k, err)
			}
		}
		if err := emitter.Finish(); err != nil {
			fail("finishing: %v", err)
		}
		printJSON(map[string]interface{}{"ok": true, "emitted": len(list)})
	default:
		fail("unknown mode %q", mode)
	}
}
