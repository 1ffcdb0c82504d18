package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketSubscriptions holds REST-hook subscriptions: key subscription id,
// value the Subscription as JSON. It is created on first write.
var bucketSubscriptions = []byte("subscriptions")

// Subscription is a REST hook (the way Zapier and Make subscribe): events
// whose type matches Event are delivered to TargetURL.
type Subscription struct {
	ID        string    `json:"id"`
	TargetURL string    `json:"target_url"`
	Event     string    `json:"event"`
	CreatedAt time.Time `json:"created_at"`
}

// PutSubscription stores (or replaces) a subscription.
func (tx *Tx) PutSubscription(s Subscription) error {
	if !tx.tx.Writable() {
		return ErrReadOnly
	}
	if s.ID == "" {
		return fmt.Errorf("%w: subscription without id", ErrInvalid)
	}
	b, err := tx.tx.CreateBucketIfNotExists(bucketSubscriptions)
	if err != nil {
		return fmt.Errorf("subscriptions bucket: %w", err)
	}
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode subscription: %w", err)
	}
	return b.Put([]byte(s.ID), v)
}

// DeleteSubscription removes a subscription; ErrNotFound when there is none.
func (tx *Tx) DeleteSubscription(id string) error {
	if !tx.tx.Writable() {
		return ErrReadOnly
	}
	b := tx.tx.Bucket(bucketSubscriptions)
	if b == nil || b.Get([]byte(id)) == nil {
		return ErrNotFound
	}
	return b.Delete([]byte(id))
}

// HasSubscription reports whether subscription id exists, as the
// transaction sees it.
func (tx *Tx) HasSubscription(id string) bool {
	b := tx.tx.Bucket(bucketSubscriptions)
	return b != nil && b.Get([]byte(id)) != nil
}

// Subscriptions lists every subscription in id order.
func (db *DB) Subscriptions() ([]Subscription, error) {
	var out []Subscription
	err := db.bolt.View(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketSubscriptions)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var s Subscription
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode subscription: %w", err)
			}
			out = append(out, s)
			return nil
		})
	})
	return out, err
}
