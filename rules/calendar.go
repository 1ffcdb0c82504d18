package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/yamlconf"
	"gopkg.in/yaml.v3"
)

// Calendar is a business-hours calendar: weekly opening hours in one time
// zone and closed dates. A time-based rule with `calendar:` counts only the
// open time of its calendar. Calendars are built by ParseCalendars and are
// immutable; a nil *Calendar counts every instant (wall-clock time).
type Calendar struct {
	// Name is the calendar's key in gateway.yaml.
	Name string
	// Location is the zone in which hours and holidays are read.
	Location *time.Location
	hours    [7][]span // by time.Weekday, sorted, not overlapping
	holidays map[civilDate]bool
}

// span is an opening window in minutes after local midnight, [from, to).
type span struct{ from, to int }

// civilDate is a calendar date without a zone.
type civilDate struct {
	y int
	m time.Month
	d int
}

// maxCalendarDays bounds every walk over a calendar's days: a duration that
// needs more than ten years of days to accumulate is treated as never.
const maxCalendarDays = 3660

var dayOrder = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// ParseCalendars reads the `calendars:` node of gateway.yaml (file names it
// in errors):
//
//	calendars:
//	  support:
//	    timezone: Europe/Rome
//	    hours: { mon-fri: "09:00-18:00", sat: ["09:00-12:00", "14:00-16:00"] }
//	    holidays: ["2026-12-25", "2026-12-26"]
//
// Hours are given per day (mon..sun) or day range (mon-fri, fri-mon); a day
// not named is closed; a window may not cross midnight ("24:00" may end
// one: the next day's first instant, also where the clocks skip that
// midnight, so "00:00-24:00" every day is open every real hour). Times the
// clocks skip in spring are the first instant after the gap. A nil node
// holds no calendars. Every problem is reported with its
// position; on any error the map is nil.
func ParseCalendars(file string, n *yaml.Node) (map[string]*Calendar, yamlconf.Errors) {
	var errs yamlconf.Errors
	n = yamlconf.Resolve(n)
	if n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return map[string]*Calendar{}, nil
	}
	if n.Kind != yaml.MappingNode {
		errs.Add(file, n, "calendars: expected a mapping of calendar names to { timezone, hours, holidays }, got %s", yamlconf.KindName(n))
		return nil, errs
	}
	out := map[string]*Calendar{}
	for _, kv := range yamlconf.Pairs(n) {
		name := kv.Key.Value
		if !idPattern.MatchString(name) {
			errs.Add(file, kv.Key, "calendar name %q: use letters, digits, '-', '_' and '.'", name)
			continue
		}
		if c := parseCalendar(file, name, kv.Value, &errs); c != nil {
			out[name] = c
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return out, nil
}

func parseCalendar(file, name string, n *yaml.Node, errs *yamlconf.Errors) *Calendar {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.MappingNode {
		errs.Add(file, n, "calendar %s: expected { timezone, hours, holidays }, got %s", name, yamlconf.KindName(n))
		return nil
	}
	before := len(*errs)
	c := &Calendar{Name: name, holidays: map[civilDate]bool{}}
	var hoursN *yaml.Node
	for _, kv := range yamlconf.Pairs(n) {
		switch kv.Key.Value {
		case "timezone":
			v := yamlconf.Resolve(kv.Value)
			loc, err := time.LoadLocation(v.Value)
			if v.Kind != yaml.ScalarNode || v.Value == "" || err != nil {
				errs.Add(file, v, "calendar %s: unknown time zone %q (use an IANA name like Europe/Rome)", name, v.Value)
				continue
			}
			c.Location = loc
		case "hours":
			hoursN = kv.Value
			parseHours(file, name, kv.Value, c, errs)
		case "holidays":
			parseHolidays(file, name, kv.Value, c, errs)
		default:
			errs.Add(file, kv.Key, "calendar %s: unknown key %q%s (valid: timezone, hours, holidays)", name, kv.Key.Value,
				yamlconf.DidYouMean(kv.Key.Value, []string{"timezone", "hours", "holidays"}))
		}
	}
	if c.Location == nil && len(*errs) == before {
		errs.Add(file, n, "calendar %s: timezone is required (an IANA name like Europe/Rome)", name)
	}
	if hoursN == nil {
		errs.Add(file, n, "calendar %s: hours are required, e.g. { mon-fri: \"09:00-18:00\" }", name)
	} else if len(*errs) == before && !c.open() {
		errs.Add(file, hoursN, "calendar %s: no opening hours at all", name)
	}
	if len(*errs) > before {
		return nil
	}
	return c
}

func parseHours(file, name string, n *yaml.Node, c *Calendar, errs *yamlconf.Errors) {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.MappingNode {
		errs.Add(file, n, "calendar %s: hours: expected a mapping like { mon-fri: \"09:00-18:00\" }, got %s", name, yamlconf.KindName(n))
		return
	}
	var given [7]bool
	for _, kv := range yamlconf.Pairs(n) {
		days, ok := parseDays(kv.Key.Value)
		if !ok {
			errs.Add(file, kv.Key, "calendar %s: hours: %q is not a day or a day range (use mon..sun or a range like mon-fri)%s",
				name, kv.Key.Value, yamlconf.DidYouMean(kv.Key.Value, append([]string{"mon-fri"}, dayOrder...)))
			continue
		}
		spans, ok := parseSpans(file, name, kv.Value, errs)
		if !ok {
			continue
		}
		for _, d := range days {
			if !given[d] {
				given[d] = true
				c.hours[d] = spans
				continue
			}
			// A day in two entries (mon-fri evenings, tue-sat early
			// mornings: the split a night shift needs) has the windows of
			// both, which must not overlap.
			merged := sortSpans(slices.Concat(c.hours[d], spans))
			if overlap(merged) {
				errs.Add(file, kv.Key, "calendar %s: hours: %s windows overlap (the day is in two entries)", name, strings.ToLower(d.String()[:3]))
			}
			c.hours[d] = merged
		}
	}
}

// parseDays reads "mon" or "mon-fri" (a range may wrap: fri-mon).
func parseDays(s string) ([]time.Weekday, bool) {
	a, b, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "-")
	da, ok := shortDay(a)
	if !ok {
		return nil, false
	}
	db := da
	if isRange {
		if db, ok = shortDay(b); !ok {
			return nil, false
		}
	}
	var out []time.Weekday
	for d := da; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == db {
			break
		}
	}
	return out, true
}

func shortDay(s string) (time.Weekday, bool) {
	if len(s) != 3 {
		return 0, false
	}
	d, ok := weekdays[s]
	return d, ok
}

// parseSpans reads "09:00-18:00" or a list of such windows.
func parseSpans(file, name string, n *yaml.Node, errs *yamlconf.Errors) ([]span, bool) {
	n = yamlconf.Resolve(n)
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var spans []span
	ok := true
	for _, it := range items {
		it = yamlconf.Resolve(it)
		bad := func(why string) {
			errs.Add(file, it, "calendar %s: hours: expected a window like \"09:00-18:00\"%s, got %s", name, why, yamlconf.KindName(it))
			ok = false
		}
		if it.Kind != yaml.ScalarNode {
			bad("")
			continue
		}
		a, b, found := strings.Cut(strings.ReplaceAll(it.Value, " ", ""), "-")
		from, ok1 := clock(a, false)
		to, ok2 := clock(b, true)
		if !found || !ok1 || !ok2 {
			bad("")
			continue
		}
		if from >= to {
			bad(" that does not cross midnight (split it: \"22:00-24:00\" on one day, \"00:00-06:00\" on the next)")
			continue
		}
		spans = append(spans, span{from, to})
	}
	if !ok {
		return nil, false
	}
	if len(spans) == 0 {
		errs.Add(file, n, "calendar %s: hours: empty list of windows", name)
		return nil, false
	}
	if overlap(sortSpans(spans)) {
		errs.Add(file, n, "calendar %s: hours: windows overlap", name)
		return nil, false
	}
	return spans, true
}

// sortSpans sorts windows by their start, in place, and returns them.
func sortSpans(spans []span) []span {
	sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
	return spans
}

// overlap reports whether any of the sorted windows starts before the one
// before it ends.
func overlap(sorted []span) bool {
	for i := 1; i < len(sorted); i++ {
		if sorted[i].from < sorted[i-1].to {
			return true
		}
	}
	return false
}

func parseHolidays(file, name string, n *yaml.Node, c *Calendar, errs *yamlconf.Errors) {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.SequenceNode {
		errs.Add(file, n, "calendar %s: holidays: expected a list of dates like [\"2026-12-25\"], got %s", name, yamlconf.KindName(n))
		return
	}
	for _, it := range n.Content {
		it = yamlconf.Resolve(it)
		t, err := time.Parse(time.DateOnly, it.Value)
		if it.Kind != yaml.ScalarNode || err != nil {
			errs.Add(file, it, "calendar %s: holidays: expected a date like 2026-12-25, got %q", name, it.Value)
			continue
		}
		c.holidays[civilDate{t.Year(), t.Month(), t.Day()}] = true
	}
}

// open reports whether the calendar has any opening hours.
func (c *Calendar) open() bool {
	for _, s := range c.hours {
		if len(s) > 0 {
			return true
		}
	}
	return false
}

// String names the calendar and its zone.
func (c *Calendar) String() string {
	if c == nil {
		return "wall clock"
	}
	return fmt.Sprintf("calendar %s (%s)", c.Name, c.Location)
}

// dayWindows calls fn, in order, for each opening window [start, end) of
// the local day y-m-d (normalized: d may run past the month's end), until
// fn returns false; holidays have none.
func (c *Calendar) dayWindows(y int, m time.Month, d int, fn func(start, end time.Time) bool) bool {
	day := time.Date(y, m, d, 12, 0, 0, 0, c.Location) // noon: never skipped by DST
	if c.holidays[civilDate{day.Year(), day.Month(), day.Day()}] {
		return true
	}
	for _, s := range c.hours[day.Weekday()] {
		start := wallTime(day, s.from, c.Location)
		end := wallTime(day, s.to, c.Location)
		if !fn(start, end) {
			return false
		}
	}
	return true
}

// wallTime is the instant of the local wall-clock time minute (minutes
// after midnight, 24:00 allowed) on day's date. A time the clock skips
// (spring forward) is the first instant after the gap, in every zone:
// time.Date leaves the choice open, and moves it an hour later in some
// zones and an hour earlier in others, which made an opening that starts
// or ends in the gap start after it ends. 24:00 is the next day's 00:00,
// which zones that spring forward at midnight (America/Santiago,
// America/Havana, Atlantic/Azores) skip: then it is the gap's end too.
func wallTime(day time.Time, minute int, loc *time.Location) time.Time {
	y, m, d := day.Date()
	if minute >= 24*60 {
		d, minute = d+1, minute-24*60 // time.Date normalizes the day
	}
	h, mi := minute/60, minute%60
	t := time.Date(y, m, d, h, mi, 0, 0, loc)
	if th, tm, _ := t.Clock(); th == h && tm == mi {
		return t
	}
	// In a gap: t lies just inside the zone period after it (moved later)
	// or just inside the one before it (moved earlier); the gap's end is
	// that period's nearer bound.
	start, end := t.ZoneBounds()
	if end.IsZero() || t.Sub(start) <= end.Sub(t) {
		return start
	}
	return end
}

// Business returns the open time between from and to (0 when to is not
// after from). It stops counting once the total reaches limit (limit <= 0:
// no limit), so that a clock compared against a duration never walks
// further than that duration. A nil calendar returns to - from.
func (c *Calendar) Business(from, to time.Time, limit time.Duration) time.Duration {
	if !to.After(from) {
		return 0
	}
	if c == nil {
		return to.Sub(from)
	}
	var total time.Duration
	lf := from.In(c.Location)
	y, m, d := lf.Date()
	for i := 0; i <= maxCalendarDays; i++ {
		done := false
		c.dayWindows(y, m, d+i, func(start, end time.Time) bool {
			if !start.Before(to) {
				done = true
				return false
			}
			if start.Before(from) {
				start = from
			}
			if end.After(to) {
				end = to
			}
			if end.After(start) {
				total += end.Sub(start)
			}
			if limit > 0 && total >= limit {
				done = true
				return false
			}
			return true
		})
		if done || !time.Date(y, m, d+i+1, 0, 0, 0, 0, c.Location).Before(to) {
			break
		}
	}
	return total
}

// Add returns the instant at which d of open time has passed since from;
// ok is false when the calendar does not accumulate d within ten years.
// A nil calendar returns from + d. Add(from, Business(from, t, 0)) is the
// first open instant at or before t that accumulates the same time.
func (c *Calendar) Add(from time.Time, d time.Duration) (time.Time, bool) {
	if c == nil {
		return from.Add(d), true
	}
	if d <= 0 {
		return from, true
	}
	left := d
	var at time.Time
	lf := from.In(c.Location)
	y, m, day := lf.Date()
	for i := 0; i <= maxCalendarDays; i++ {
		found := false
		c.dayWindows(y, m, day+i, func(start, end time.Time) bool {
			if !end.After(from) {
				return true
			}
			if start.Before(from) {
				start = from
			}
			n := end.Sub(start)
			if n >= left {
				at, found = start.Add(left), true
				return false
			}
			left -= n
			return true
		})
		if found {
			return at, true
		}
	}
	return time.Time{}, false
}

// openSpan is the least open time a calendar offers in maxCalendarDays
// consecutive days: the most any timer on it can wait for, since Add looks
// no further (a start after a day's last opening has exactly that many
// whole days ahead of it).
type openSpan struct {
	least time.Duration
	// from is the first day of such a span when the calendar's holidays
	// make it shorter than its weekly hours alone do (zero otherwise).
	from time.Time
}

// leastOpen computes the calendar's openSpan. The weekly hours are measured
// over a year of starting days (daylight saving time included); holidays,
// which are dated, over every span that holds one.
func (c *Calendar) leastOpen() openSpan {
	weekly, _ := c.leastOpenFrom(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 366, false)
	out := openSpan{least: weekly}
	if len(c.holidays) == 0 {
		return out
	}
	first, last := civilDate{y: 1 << 30}, civilDate{}
	for d, closed := range c.holidays {
		if !closed {
			continue
		}
		if d.before(first) {
			first = d
		}
		if last.before(d) {
			last = d
		}
	}
	// Spans that start up to ten years before the first holiday and on the
	// last one at the latest hold holidays; dates centuries apart are
	// looked at for the last century only.
	end := time.Date(last.y, last.m, last.d, 0, 0, 0, 0, time.UTC)
	start := time.Date(first.y, first.m, first.d-(maxCalendarDays-1), 0, 0, 0, 0, time.UTC)
	start = later(start, end.AddDate(-100, 0, 0))
	days := int(end.Sub(start)/(24*time.Hour)) + 1
	if least, from := c.leastOpenFrom(start, days, true); least < weekly {
		out.least, out.from = least, from
	}
	return out
}

// leastOpenFrom returns the least open time of maxCalendarDays consecutive
// days over the spans that start on one of the days days from the date of
// start, and the first day of that span; holidays count when withHolidays.
func (c *Calendar) leastOpenFrom(start time.Time, days int, withHolidays bool) (time.Duration, time.Time) {
	y, m, d := start.Date()
	open := make([]time.Duration, days+maxCalendarDays-1)
	for i := range open {
		open[i] = c.dayOpen(y, m, d+i, withHolidays)
	}
	var sum time.Duration
	for _, o := range open[:maxCalendarDays] {
		sum += o
	}
	least, at := sum, 0
	for s := 1; s < days; s++ {
		sum += open[s+maxCalendarDays-1] - open[s-1]
		if sum < least {
			least, at = sum, s
		}
	}
	return least, time.Date(y, m, d+at, 0, 0, 0, 0, time.UTC)
}

// dayOpen is the open time of the local day y-m-d (normalized), its
// holiday counted or not.
func (c *Calendar) dayOpen(y int, m time.Month, d int, withHolidays bool) time.Duration {
	day := time.Date(y, m, d, 12, 0, 0, 0, c.Location) // noon: never skipped by DST
	if withHolidays && c.holidays[civilDate{day.Year(), day.Month(), day.Day()}] {
		return 0
	}
	var total time.Duration
	for _, s := range c.hours[day.Weekday()] {
		if start, end := wallTime(day, s.from, c.Location), wallTime(day, s.to, c.Location); end.After(start) {
			total += end.Sub(start)
		}
	}
	return total
}

// surelyOpen is a quick lower bound of openSpan.least: the weekly hours of
// maxCalendarDays days, less an hour for each of the spring-forward days
// such a span may hold and a full day for each holiday. A duration within
// it needs no day-by-day walk.
func (c *Calendar) surelyOpen() time.Duration {
	var week, longestDay time.Duration
	for _, spans := range c.hours {
		var day time.Duration
		for _, s := range spans {
			day += time.Duration(s.to-s.from) * time.Minute
		}
		week += day
		longestDay = max(longestDay, day)
	}
	springs := time.Duration(2 * (maxCalendarDays/365 + 1))
	return time.Duration(maxCalendarDays/7)*week - springs*time.Hour - time.Duration(len(c.holidays))*(longestDay+time.Hour)
}

func (a civilDate) before(b civilDate) bool {
	if a.y != b.y {
		return a.y < b.y
	}
	if a.m != b.m {
		return a.m < b.m
	}
	return a.d < b.d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
