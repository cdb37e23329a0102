// Package hlc implements the hybrid logical clock of Kulkarni et al. (2014),
// "Logical Physical Clocks and Consistent Snapshots in Globally Distributed
// Databases", as replicad uses it to stamp every write.
//
// A [Timestamp] is 64 bits: 48 bits of wall-clock milliseconds since the Unix
// epoch and a 16-bit logical counter. Timestamps are totally ordered as plain
// unsigned integers. Two nodes can produce the same timestamp; a [Stamp] adds
// the writing node's [NodeID] as the final tie-break, so stamps of distinct
// writes are always distinct and totally ordered.
//
// A [Clock] never goes backwards: not across a backward jump of the physical
// clock it is given, and not across restarts, as long as the caller persists
// [Clock.HighWater] and hands it back to [Clock.Restore] on start. A logical
// counter that would overflow advances the wall part by one millisecond instead
// of wrapping.
//
// The physical clock is injected (a func returning Unix milliseconds), so tests
// and the research lab drive time themselves. [Clock.Update] refuses a remote
// timestamp further ahead of local physical time than the configured maximum
// offset with an [*OffsetError] (matching [ErrClockOffset]) and leaves the clock
// unchanged; the caller parks the change that carried it.
//
// # Choice of the default maximum offset
//
// [DefaultMaxOffset] is 60 seconds. replicad runs on phone-class devices that
// may be offline for days. A phone whose clock is set from the network is
// within about a second of true time; offline, its quartz oscillator drifts at
// up to about 20 ppm, which is 1.7 s a day, 12 s a week, about 50 s a month.
// One minute therefore admits a device that has been offline for a month
// without parking any of its changes, while it still catches the faults that
// matter: a clock set by hand, a wrong time zone applied to UTC (whole hours),
// a dead RTC battery that resets to an old or a far-future date. The bound is
// also the most a single fast clock can drag every replica's clock forward, and
// so the longest window in which that device's writes beat concurrent writes
// made elsewhere under last-writer-wins; a minute keeps that window small.
// Server deployments with disciplined clocks can set it lower (CockroachDB uses
// 500 ms); a research lab can disable it with a bound <= 0.
package hlc
