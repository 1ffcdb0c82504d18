package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/hookline/hookline/event"
)

// metaTimingSignatures is the meta key of the timing signatures the armed
// timers follow (one JSON object: rule id -> signature).
const metaTimingSignatures = "timing/signatures"

// maxTimerRefs bounds one TimerRefs page.
const maxTimerRefs = 10000

// TimerRef names one armed timer without its due time.
type TimerRef struct {
	Key  event.EntityKey
	Rule string
}

// TimerRefs returns up to limit armed timers, by name, in key order
// (connector, entity, reference, rule), starting after the cursor after
// ("" starts at the beginning), and the cursor of the next page ("" when
// this was the last). It reads keys only (no timer is decoded), in one read
// transaction, so a walk of every timer in pages never holds the writer.
// The walk passes the entities' snapshots too (timers are stored behind
// them) and may name a timer cancelled since (Tx.Timer then returns nil).
// limit <= 0 means 1,000; at most 10,000 are returned.
func (db *DB) TimerRefs(after string, limit int) ([]TimerRef, string, error) {
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, maxTimerRefs)
	var out []TimerRef
	next := ""
	err := db.View(func(tx *Tx) error {
		c := tx.b(bucketEntities).Cursor()
		k, v := seekAfter(c, after)
		var last []byte
		for k != nil {
			switch mark := markOf(k); {
			case mark == eventMark:
				// Skip the rest of the entity's event index.
				i := bytes.LastIndexByte(k, sep)
				k, v = c.Seek(append(copyBytes(k[:i+1]), eventMark+1))
				continue
			case mark != timerMark, isTombstone(v):
				k, v = c.Next()
				continue
			}
			if len(out) == limit {
				next = string(last)
				return nil
			}
			ref, err := parseTimerRecordKey(k)
			if err != nil {
				return err
			}
			out = append(out, ref)
			last = k
			k, v = c.Next()
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list timer refs: %w", err)
	}
	return out, next, nil
}

// parseTimerRecordKey splits connector \x00 entity \x00 reference \x00
// \x01 rule (see recordKey) into fresh strings.
func parseTimerRecordKey(k []byte) (TimerRef, error) {
	parts := bytes.Split(k, []byte{sep})
	if len(parts) != 4 || len(parts[3]) == 0 || parts[3][0] != timerMark {
		return TimerRef{}, fmt.Errorf("timer key %q: not connector, entity, reference and marked rule", k)
	}
	return TimerRef{
		Key:  event.EntityKey{Connector: string(parts[0]), Entity: string(parts[1]), Reference: string(parts[2])},
		Rule: string(parts[3][1:]),
	}, nil
}

// TimingSignatures returns the timing signatures (rule id -> signature of
// its time-based config) that the armed timers were last brought in line
// with; found is false when none were ever stored (a store older than
// signatures, or one that never armed a timer under them).
func (tx *Tx) TimingSignatures() (sigs map[string]string, found bool, err error) {
	v := tx.b(bucketMeta).Get([]byte(metaTimingSignatures))
	if v == nil {
		return map[string]string{}, false, nil
	}
	sigs = map[string]string{}
	if err := json.Unmarshal(v, &sigs); err != nil {
		return nil, false, fmt.Errorf("decode timing signatures: %w", err)
	}
	return sigs, true, nil
}

// PutTimingSignatures replaces the stored timing signatures.
func (tx *Tx) PutTimingSignatures(sigs map[string]string) error {
	if err := tx.writable("put timing signatures"); err != nil {
		return err
	}
	if sigs == nil {
		sigs = map[string]string{}
	}
	data, err := json.Marshal(sigs)
	if err != nil {
		return fmt.Errorf("encode timing signatures: %w", err)
	}
	if err := tx.b(bucketMeta).Put([]byte(metaTimingSignatures), data); err != nil {
		return fmt.Errorf("put timing signatures: %w", err)
	}
	return nil
}

// ForgetTimingSignatures removes the stored timing signatures, as in a
// store written before they were kept: the next retime checks every armed
// timer against the rules in force.
func (tx *Tx) ForgetTimingSignatures() error {
	if err := tx.writable("forget timing signatures"); err != nil {
		return err
	}
	if err := tx.b(bucketMeta).Delete([]byte(metaTimingSignatures)); err != nil {
		return fmt.Errorf("forget timing signatures: %w", err)
	}
	return nil
}

// TimingSignatures is Tx.TimingSignatures in its own read transaction.
func (db *DB) TimingSignatures() (map[string]string, bool, error) {
	var sigs map[string]string
	var found bool
	err := db.View(func(tx *Tx) error {
		var err error
		sigs, found, err = tx.TimingSignatures()
		return err
	})
	return sigs, found, err
}
