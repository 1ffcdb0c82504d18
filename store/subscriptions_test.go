package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestSubscriptionsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if subs, err := db.Subscriptions(); err != nil || len(subs) != 0 {
		t.Fatalf("empty store: %v %v", subs, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err = db.Update(func(tx *Tx) error {
		if err := tx.PutSubscription(Subscription{ID: "s1", TargetURL: "https://hooks.zapier.com/1", Event: "ticket.*", CreatedAt: at}); err != nil {
			return err
		}
		return tx.PutSubscription(Subscription{ID: "s2", TargetURL: "https://hook.make.com/2", Event: "chat.ended", CreatedAt: at})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	subs, err := db.Subscriptions()
	if err != nil || len(subs) != 2 || subs[0].TargetURL != "https://hooks.zapier.com/1" || !subs[1].CreatedAt.Equal(at) {
		t.Fatalf("after reopen: %+v %v", subs, err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteSubscription("s1") }); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteSubscription("s1") }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := db.View(func(tx *Tx) error { return tx.PutSubscription(Subscription{ID: "x"}) }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write in View: %v", err)
	}
	if subs, _ := db.Subscriptions(); len(subs) != 1 || subs[0].ID != "s2" {
		t.Fatalf("after delete: %+v", subs)
	}
}
