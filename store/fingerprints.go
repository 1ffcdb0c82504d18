package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// Fingerprint remembers one change Hookline delivered (connector,
// reference, field, value) so that the platform's echo of it can be
// recognized until Expires.
type Fingerprint struct {
	Connector string `json:"connector"`
	Reference string `json:"reference"`
	Field     string `json:"field"`
	Value     string `json:"value"`
	// Also is the same change in its other spelling (the platform's value
	// after the connector's value map), fingerprinted beside this one and
	// consumed with it; empty when there is none.
	Also       string    `json:"also,omitempty"`
	DeliveryID string    `json:"delivery_id"`
	Hops       int       `json:"hops"`
	Expires    time.Time `json:"expires"`
}

// fingerprintKey is connector \x00 reference \x00 field \x00 value.
func fingerprintKey(connector, reference, field, value string) ([]byte, error) {
	for _, p := range [...][2]string{{"connector", connector}, {"reference", reference}, {"field", field}} {
		if err := checkPart(p[0], p[1]); err != nil {
			return nil, err
		}
	}
	k := join(connector, reference, field, value)
	if len(k) > maxIndexedKey {
		return nil, fmt.Errorf("fingerprint key too long: %w", ErrInvalid)
	}
	return k, nil
}

// PutFingerprint remembers a delivered change, replacing an older
// fingerprint of the same (connector, reference, field, value).
func (tx *Tx) PutFingerprint(f Fingerprint) error {
	if err := tx.writable("put fingerprint"); err != nil {
		return err
	}
	key, err := fingerprintKey(f.Connector, f.Reference, f.Field, f.Value)
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
// exists that expires after now, else nil, nil.
func (tx *Tx) MatchFingerprint(connector, reference, field, value string, now time.Time) (*Fingerprint, error) {
	key, err := fingerprintKey(connector, reference, field, value)
	if err != nil {
		return nil, fmt.Errorf("match fingerprint: %w", err)
	}
	v := tx.b(bucketFingerprints).Get(key)
	if v == nil {
		return nil, nil
	}
	f := new(Fingerprint)
	if err := json.Unmarshal(v, f); err != nil {
		return nil, fmt.Errorf("match fingerprint: decode: %w", err)
	}
	if !f.Expires.After(now) {
		return nil, nil
	}
	return f, nil
}

// DeleteFingerprint forgets a fingerprint (an echo consumed it).
func (tx *Tx) DeleteFingerprint(f *Fingerprint) error {
	if err := tx.writable("delete fingerprint"); err != nil {
		return err
	}
	key, err := fingerprintKey(f.Connector, f.Reference, f.Field, f.Value)
	if err != nil {
		return fmt.Errorf("delete fingerprint: %w", err)
	}
	if err := tx.b(bucketFingerprints).Delete(key); err != nil {
		return fmt.Errorf("delete fingerprint: %w", err)
	}
	if err := tx.b(bucketFingerprintsExp).Delete(timeKey(f.Expires, key)); err != nil {
		return fmt.Errorf("delete fingerprint: unindex: %w", err)
	}
	return nil
}

// PruneFingerprints deletes fingerprints that expired at or before now and
// returns how many (a range scan of the expiry index).
func (db *DB) PruneFingerprints(now time.Time) (int, error) {
	return db.pruneExpiring(bucketFingerprintsExp, bucketFingerprints, now, "prune fingerprints")
}
