// The group-consume mode: one member of a consumer group through
// sarama.ConsumerGroup, printing what the group does to it as JSON lines
// (peers/PATTERN.md, "Group members").
//
// With an eager strategy (range, roundrobin, sticky) every rebalance ends
// Sarama's session: Setup prints the new claims as "assigned", Cleanup
// commits and prints them as "revoked". With cooperative-sticky the session
// lives on across rebalances and only moved claims end, so each claim prints
// its own "assigned" when its ConsumeClaim starts and, after a commit, its
// own "revoked" when it ends.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

func balanceStrategy(name string) (sarama.BalanceStrategy, error) {
	switch name {
	case "range":
		return sarama.NewBalanceStrategyRange(), nil
	case "roundrobin":
		return sarama.NewBalanceStrategyRoundRobin(), nil
	case "sticky":
		return sarama.NewBalanceStrategySticky(), nil
	case "cooperative-sticky":
		return sarama.NewBalanceStrategyCooperativeSticky(), nil
	}
	return nil, fmt.Errorf("unknown strategy %q", name)
}

func nowUs() int64 { return time.Now().UnixMicro() }

// partitionList is a sorted [[topic, partition], ...] of claims.
func partitionList(claims map[string][]int32) [][2]any {
	type tp struct {
		t string
		p int32
	}
	var all []tp
	for t, ps := range claims {
		for _, p := range ps {
			all = append(all, tp{t, p})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].t != all[j].t {
			return all[i].t < all[j].t
		}
		return all[i].p < all[j].p
	})
	list := make([][2]any, 0, len(all))
	for _, x := range all {
		list = append(list, [2]any{x.t, x.p})
	}
	return list
}

// emitNow writes one line and flushes it, so that the test sees it at once.
func emitNow(v any) {
	emit(v)
	flushOut()
}

type groupHandler struct {
	cooperative bool
	maxRecords  int64
	stop        context.CancelFunc

	records, assignments, revocations, commits atomic.Int64

	// Serializes the ends of claims (commit, "committed", "revoked", forget),
	// so that one claim's commit line never names a partition another claim
	// has just printed as revoked.
	releaseMu sync.Mutex

	// The offset after the last record printed, per owned partition, and
	// what was last printed as committed.
	marksMu   sync.Mutex
	marks     map[topicPartition]int64
	committed map[topicPartition]int64
}

type topicPartition struct {
	topic     string
	partition int32
}

func (h *groupHandler) mark(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
	h.marksMu.Lock()
	defer h.marksMu.Unlock()
	s.MarkMessage(m, "")
	h.marks[topicPartition{m.Topic, m.Partition}] = m.Offset + 1
}

// commit commits every mark of the session and prints the marks that were
// new (taken before the commit, so the line never claims more than it sent).
func (h *groupHandler) commit(s sarama.ConsumerGroupSession) {
	h.marksMu.Lock()
	var fresh []topicPartition
	offsets := map[topicPartition]int64{}
	for tp, o := range h.marks {
		if c, ok := h.committed[tp]; !ok || c != o {
			fresh = append(fresh, tp)
			offsets[tp] = o
		}
	}
	h.marksMu.Unlock()
	s.Commit()
	if len(fresh) == 0 {
		return
	}
	h.commits.Add(1)
	sort.Slice(fresh, func(i, j int) bool {
		if fresh[i].topic != fresh[j].topic {
			return fresh[i].topic < fresh[j].topic
		}
		return fresh[i].partition < fresh[j].partition
	})
	list := make([][3]any, 0, len(fresh))
	h.marksMu.Lock()
	for _, tp := range fresh {
		list = append(list, [3]any{tp.topic, tp.partition, offsets[tp]})
		if c, ok := h.committed[tp]; !ok || c < offsets[tp] {
			h.committed[tp] = offsets[tp]
		}
	}
	h.marksMu.Unlock()
	us := nowUs()
	emitNow(obj{{"type", "group"}, {"event", "committed"}, {"ts_ms", us / 1000}, {"ts_us", us},
		{"offsets", list}, {"generation", s.GenerationID()}})
}

// release commits, then prints the claims as revoked and forgets their marks.
func (h *groupHandler) release(s sarama.ConsumerGroupSession, claims map[string][]int32) {
	h.releaseMu.Lock()
	defer h.releaseMu.Unlock()
	h.commit(s)
	h.revocations.Add(1)
	h.event("revoked", s, claims)
	h.forget(claims)
}

// forget drops the marks of partitions given up.
func (h *groupHandler) forget(claims map[string][]int32) {
	h.marksMu.Lock()
	defer h.marksMu.Unlock()
	for t, ps := range claims {
		for _, p := range ps {
			delete(h.marks, topicPartition{t, p})
			delete(h.committed, topicPartition{t, p})
		}
	}
}

func (h *groupHandler) event(kind string, s sarama.ConsumerGroupSession, claims map[string][]int32) {
	us := nowUs()
	emitNow(obj{{"type", "group"}, {"event", kind}, {"ts_ms", us / 1000}, {"ts_us", us},
		{"partitions", partitionList(claims)}, {"generation", s.GenerationID()},
		{"member_id", s.MemberID()}})
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	if !h.cooperative {
		h.assignments.Add(1)
		h.event("assigned", s, s.Claims())
	}
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	if !h.cooperative {
		// What was marked is committed before the group moves the claims on.
		h.release(s, s.Claims())
	}
	return nil
}

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	one := map[string][]int32{claim.Topic(): {claim.Partition()}}
	if h.cooperative {
		h.assignments.Add(1)
		h.event("assigned", s, one)
	}
	done := s.Context().Done()
loop:
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				break loop
			}
			us := nowUs()
			var value any
			if m.Value != nil {
				value = string(m.Value)
			}
			emitNow(obj{{"type", "group"}, {"event", "record"}, {"ts_ms", us / 1000}, {"ts_us", us},
				{"topic", m.Topic}, {"partition", m.Partition}, {"offset", m.Offset}, {"value", value}})
			h.mark(s, m)
			if n := h.records.Add(1); h.maxRecords > 0 && n >= h.maxRecords {
				h.stop()
			}
		case <-done:
			break loop
		}
	}
	if h.cooperative {
		h.release(s, one)
	}
	return nil
}

func groupConsume(a args) (bool, error) {
	started := time.Now()
	strategy, err := balanceStrategy(a.strategy)
	if err != nil {
		return false, err
	}
	cfg := newConfig()
	cfg.ClientID = a.clientID
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	cfg.Consumer.Group.Session.Timeout = a.sessionTimeout
	cfg.Consumer.Group.Heartbeat.Interval = a.heartbeatInterval
	cfg.Consumer.Group.Rebalance.Timeout = a.maxPollInterval

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The test ends the run by closing stdin.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	var timedOut atomic.Bool
	deadline := time.AfterFunc(a.timeout, func() {
		timedOut.Store(true)
		cancel()
	})
	defer deadline.Stop()

	group, err := sarama.NewConsumerGroup(brokers(a), a.group, cfg)
	if err != nil {
		return false, fmt.Errorf("new consumer group: %w", err)
	}
	var groupErrors atomic.Int64
	go func() {
		for e := range group.Errors() {
			groupErrors.Add(1)
			fmt.Fprintf(os.Stderr, "klamm-sarama-peer: group error: %v\n", e)
		}
	}()
	h := &groupHandler{cooperative: a.strategy == "cooperative-sticky", maxRecords: a.maxRecords, stop: cancel,
		marks: map[topicPartition]int64{}, committed: map[topicPartition]int64{}}
	topics := strings.Split(a.topics, ",")
	var consumeErr error
	for ctx.Err() == nil {
		// An eager rebalance ends the session and this call; the loop joins again.
		if err := group.Consume(ctx, topics, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			fmt.Fprintf(os.Stderr, "klamm-sarama-peer: consume: %v\n", err)
			consumeErr = err
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Close leaves the group.
	if err := group.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "klamm-sarama-peer: closing the group: %v\n", err)
	}
	var lastErr any
	if consumeErr != nil {
		lastErr = consumeErr.Error()
	}
	ok := !timedOut.Load()
	emit(obj{{"type", "summary"}, {"mode", "group-consume"}, {"ok", ok}, {"protocol", "classic"},
		{"strategy", a.strategy}, {"records", h.records.Load()}, {"assignments", h.assignments.Load()},
		{"revocations", h.revocations.Load()}, {"commits", h.commits.Load()}, {"group_errors", groupErrors.Load()},
		{"last_consume_error", lastErr}, {"timed_out", timedOut.Load()},
		{"sarama_version", cfg.Version.String()}, {"ms", time.Since(started).Milliseconds()}})
	return ok, nil
}
