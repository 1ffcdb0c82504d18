package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookline/hookline/event"
)

// Fingerprint remembers one change Hookline delivered (connector, entity
// type, reference, field, value) so that the platform's echo of it can be
// recognized until Expires.
type Fingerprint struct {
	Connector string `json:"connector"`
	Entity    string `json:"entity"`
	Reference string `json:"reference"`
	Field     string `json:"field"`
	Value     string `json:"value"`
	// Also is the same change in its other spelling (the platform's value
	// after the connector's value map), fingerprinted beside this one and
	// ended with it; empty when there is none.
	Also       string `json:"also,omitempty"`
	DeliveryID string `json:"delivery_id"`
	Hops       int    `json:"hops"`
	// Window is how long the echo is awaited after the delivery is sent:
	// when the delivery succeeds, Expires moves to then plus Window (a
	// delivery held back by retries is echoed only once sent). Zero
	// leaves Expires as it was written.
	Window  time.Duration `json:"window,omitempty"`
	Expires time.Time     `json:"expires"`
}

// fingerprintKey is connector \x00 entity \x00 reference \x00 field \x00
// value \x00 delivery id: each delivery of a change has its own
// fingerprint, which ends with that delivery (a second delivery of the
// same change that fails leaves the first's echo recognised). Keys written
// before the delivery id was part of them (ending with the value) are
// still matched, and pruned when they expire; keys written before the
// entity type was part of them match nothing and are pruned when they
// expire.
func fingerprintKey(connector, entity, reference, field, value, delivery string) ([]byte, error) {
	k, err := fingerprintValueKey(connector, entity, reference, field, value)
	if err != nil {
		return nil, err
	}
	k = append(append(k, sep), delivery...)
	if len(k) > maxIndexedKey {
		return nil, fmt.Errorf("fingerprint key too long: %w", ErrInvalid)
	}
	return k, nil
}

// fingerprintValueKey is the start of the keys of one change's
// fingerprints (connector \x00 entity \x00 reference \x00 field \x00
// value), which is also the whole key of one written by an older build.
func fingerprintValueKey(connector, entity, reference, field, value string) ([]byte, error) {
	prefix, err := fingerprintPrefix(connector, entity, reference, field)
	if err != nil {
		return nil, err
	}
	k := append(prefix, value...)
	if len(k) > maxIndexedKey {
		return nil, fmt.Errorf("fingerprint key too long: %w", ErrInvalid)
	}
	return k, nil
}

// fingerprintPrefix is the start of the keys of an entity's fingerprints
// (connector \x00 entity \x00 reference \x00), or with field set of that
// field's fingerprints (... field \x00).
func fingerprintPrefix(connector, entity, reference, field string) ([]byte, error) {
	if err := checkEntityKey(event.EntityKey{Connector: connector, Entity: entity, Reference: reference}); err != nil {
		return nil, err
	}
	if field == "" {
		return prefixOf(connector, entity, reference), nil
	}
	if err := checkPart("field", field); err != nil {
		return nil, err
	}
	return prefixOf(connector, entity, reference, field), nil
}

// PutFingerprint remembers a change delivery f.DeliveryID makes,
// replacing that delivery's older fingerprint of it; other deliveries'
// fingerprints of the same change are kept beside it.
func (tx *Tx) PutFingerprint(f Fingerprint) error {
	if err := tx.writable("put fingerprint"); err != nil {
		return err
	}
	key, err := fingerprintKey(f.Connector, f.Entity, f.Reference, f.Field, f.Value, f.DeliveryID)
	if err != nil {
		return fmt.Errorf("put fingerprint: %w", err)
	}
	fps, exp := tx.b(bucketFingerprints), tx.b(bucketFingerprintsExp)
	if old := fps.Get(key); old != nil {
		var of Fingerprint
		if err := json.Unmarshal(old, &of); err != nil {
			return fmt.Errorf("put fingerprint: decode old: %w", err)
		}
		if err := exp.Delete(timeKey(of.Expires, key)); err != nil {
			return fmt.Errorf("put fingerprint: unindex old: %w", err)
		}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("put fingerprint: encode: %w", err)
	}
	if err := fps.Put(key, data); err != nil {
		return fmt.Errorf("put fingerprint: %w", err)
	}
	if err := exp.Put(timeKey(f.Expires, key), present()); err != nil {
		return fmt.Errorf("put fingerprint: index expiry: %w", err)
	}
	return nil
}

// MatchFingerprint returns the fingerprint of a delivered change when one
// exists that expires after now, else nil, nil. When several deliveries
// made the change, it is the one with the most hops (the loop guards
// count from it), of those the one that expires last.
func (tx *Tx) MatchFingerprint(connector, entity, reference, field, value string, now time.Time) (*Fingerprint, error) {
	prefix, err := fingerprintValueKey(connector, entity, reference, field, value)
	if err != nil {
		return nil, fmt.Errorf("match fingerprint: %w", err)
	}
	// Under the prefix are this value's fingerprints, and those of
	// values it is the start of: the decoded value tells them apart.
	fps, err := tx.fingerprintsUnder(prefix, now)
	if err != nil {
		return nil, fmt.Errorf("match fingerprint: %w", err)
	}
	return BestFingerprint(fps, field, value), nil
}

// BestFingerprint returns, of fps, the fingerprint of the change (field,
// value) the loop guards count from: the one with the most hops, of those
// the one that expires last (nil: none).
func BestFingerprint(fps []Fingerprint, field, value string) *Fingerprint {
	var best *Fingerprint
	for i := range fps {
		f := &fps[i]
		if f.Field != field || f.Value != value {
			continue
		}
		if best == nil || f.Hops > best.Hops || f.Hops == best.Hops && f.Expires.After(best.Expires) {
			best = f
		}
	}
	return best
}

// FieldFingerprints returns the fingerprints of one field of an entity
// that expire after now, in value order (one per delivery that made the
// change).
func (tx *Tx) FieldFingerprints(connector, entity, reference, field string, now time.Time) ([]Fingerprint, error) {
	if field == "" {
		return nil, fmt.Errorf("field fingerprints: no field: %w", ErrInvalid)
	}
	prefix, err := fingerprintPrefix(connector, entity, reference, field)
	if err != nil {
		return nil, fmt.Errorf("field fingerprints: %w", err)
	}
	return tx.fingerprintsUnder(prefix, now)
}

// EntityFingerprints returns the fingerprints of one entity that expire
// after now, in key order (field, value, delivery): one read serves every
// check an event or an update makes on the entity, and an entity without
// any (most of them, most of the time) costs one seek.
func (tx *Tx) EntityFingerprints(connector, entity, reference string, now time.Time) ([]Fingerprint, error) {
	prefix, err := fingerprintPrefix(connector, entity, reference, "")
	if err != nil {
		return nil, fmt.Errorf("entity fingerprints: %w", err)
	}
	return tx.fingerprintsUnder(prefix, now)
}

// fingerprintsUnder returns the fingerprints whose keys start with prefix
// and that expire after now.
func (tx *Tx) fingerprintsUnder(prefix []byte, now time.Time) ([]Fingerprint, error) {
	var out []Fingerprint
	c := tx.b(bucketFingerprints).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var f Fingerprint
		if err := json.Unmarshal(v, &f); err != nil {
			return nil, fmt.Errorf("decode fingerprint: %w", err)
		}
		if f.Expires.After(now) {
			out = append(out, f)
		}
	}
	return out, nil
}

// settleFingerprints settles the fingerprints of delivery d, which has
// just reached its state: a delivery that failed or was cancelled changed
// nothing on the platform, and its fingerprints are deleted (the same
// change made there by a person is theirs); one that succeeded keeps them
// until its send time plus their Window. Fingerprints of the same change
// written since by another delivery are left alone.
func (tx *Tx) settleFingerprints(d *Delivery, now time.Time) error {
	switch d.State {
	case DeliverySucceeded, DeliveryFailed, DeliveryCancelled:
	default:
		return nil
	}
	if d.State == DeliverySucceeded && now.Sub(d.CreatedAt) <= settleSlack {
		// Sent right after it was made, as nearly every delivery is: its
		// fingerprints expire at most settleSlack before its send time plus
		// their window, and re-dating them would cost a read and a write
		// per delivery for nothing.
		return nil
	}
	// The entity it fingerprinted (deliver_to: the one it changes, whose
	// platform echoes it), as the gateway chose it.
	connector, entity, reference := d.Connector, d.Entity, d.Reference
	if d.Update.StateOf != nil {
		k := d.Update.StateKey()
		connector, entity, reference = k.Connector, k.Entity, k.Reference
	}
	if connector == "" || entity == "" || reference == "" {
		return nil // not an entity update: it fingerprinted nothing
	}
	prefix, err := fingerprintPrefix(connector, entity, reference, "")
	if err != nil {
		return nil // a key no fingerprint can have
	}
	fps, err := tx.fingerprintsUnder(prefix, time.Time{}) // expired ones too, until pruned
	if err != nil {
		return fmt.Errorf("settle fingerprints: %w", err)
	}
	for i := range fps {
		f := &fps[i]
		if f.DeliveryID != d.ID {
			continue
		}
		if d.State != DeliverySucceeded {
			if err := tx.DeleteFingerprint(f); err != nil {
				return fmt.Errorf("settle fingerprints: %w", err)
			}
			continue
		}
		if until := now.Add(f.Window); f.Window > 0 && until.Sub(f.Expires) > settleSlack {
			f.Expires = until
			if err := tx.PutFingerprint(*f); err != nil {
				return fmt.Errorf("settle fingerprints: %w", err)
			}
		}
	}
	return nil
}

// settleSlack is how much of its echo window a succeeded delivery's
// fingerprint may lose to the time between the delivery's creation (when
// the fingerprint was written) and its send before settleFingerprints
// re-dates it.
const settleSlack = 5 * time.Second

// DeleteFingerprint forgets a fingerprint (its delivery's, the same
// change made by other deliveries is kept).
func (tx *Tx) DeleteFingerprint(f *Fingerprint) error {
	if err := tx.writable("delete fingerprint"); err != nil {
		return err
	}
	key, err := fingerprintKey(f.Connector, f.Entity, f.Reference, f.Field, f.Value, f.DeliveryID)
	if err != nil {
		return fmt.Errorf("delete fingerprint: %w", err)
	}
	fps, exp := tx.b(bucketFingerprints), tx.b(bucketFingerprintsExp)
	if legacy := key[:len(key)-len(f.DeliveryID)-1]; fps.Get(key) == nil {
		// Written by an older build, under the change alone: its own
		// when it names the delivery.
		var old Fingerprint
		if v := fps.Get(legacy); v == nil || json.Unmarshal(v, &old) != nil || old.DeliveryID != f.DeliveryID {
			return nil
		}
		key = legacy
		f = &old
	}
	if err := fps.Delete(key); err != nil {
		return fmt.Errorf("delete fingerprint: %w", err)
	}
	if err := exp.Delete(timeKey(f.Expires, key)); err != nil {
		return fmt.Errorf("delete fingerprint: unindex: %w", err)
	}
	return nil
}

// PruneFingerprints deletes fingerprints that expired at or before now and
// returns how many (a range scan of the expiry index). A fingerprint of a
// delivery not sent yet (pending or in flight) is kept instead, until now
// plus its Window: its change has not reached the platform, and its echo
// is still to come.
func (db *DB) PruneFingerprints(now time.Time) (int, error) {
	return db.pruneExpiring(bucketFingerprintsExp, bucketFingerprints, now, "prune fingerprints", func(tx *Tx, key []byte) (bool, error) {
		fps := tx.b(bucketFingerprints)
		f, ok := tx.unsentFingerprint(fps.Get(key))
		if !ok {
			return false, nil
		}
		// Rewritten under its key of today (one written by an older
		// build is keyed without its delivery).
		if err := fps.Delete(key); err != nil {
			return false, err
		}
		f.Expires = now.Add(f.Window)
		return true, tx.PutFingerprint(*f)
	})
}

// unsentFingerprint decodes a stored fingerprint and reports whether its
// delivery is still pending or in flight (and it has a window to keep it
// for).
func (tx *Tx) unsentFingerprint(v []byte) (*Fingerprint, bool) {
	if v == nil {
		return nil, false
	}
	f := new(Fingerprint)
	if err := json.Unmarshal(v, f); err != nil || f.Window <= 0 || f.DeliveryID == "" || f.Entity == "" {
		return nil, false
	}
	states := tx.b(bucketOutboxState)
	for _, st := range [...]string{DeliveryPending, DeliveryInFlight} {
		if states.Get(stateKey(st, f.DeliveryID)) != nil {
			return f, true
		}
	}
	return nil, false
}
