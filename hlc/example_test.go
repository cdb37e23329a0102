package hlc_test

import (
	"errors"
	"fmt"

	"github.com/replicad/replicad/hlc"
)

func ExampleClock() {
	// A fake physical clock, in Unix milliseconds, that the example sets.
	ms := int64(1_700_000_000_000)
	phys := func() int64 { return ms }
	clock := hlc.NewClock(phys, hlc.DefaultMaxOffset)

	// Local events in the same millisecond tick the logical counter.
	fmt.Println("now:", clock.Now())
	fmt.Println("now:", clock.Now())

	// A remote stamp 10 s ahead is within the bound: later stamps exceed it.
	if err := clock.Update(hlc.New(ms+10_000, 3)); err != nil {
		fmt.Println("update:", err)
	}
	fmt.Println("now after update:", clock.Now())

	// One 2 minutes ahead is refused, and the clock is left unchanged.
	err := clock.Update(hlc.New(ms+120_000, 0))
	var oe *hlc.OffsetError
	if errors.As(err, &oe) {
		fmt.Println("refused:", errors.Is(err, hlc.ErrClockOffset), oe.Ahead())
	}

	// Persist the high-water mark; after a restart with a physical clock
	// that went back a minute, Restore keeps new stamps above the old ones.
	hw := clock.HighWater()
	fmt.Println("high water:", hw)
	ms -= 60_000
	restarted := hlc.NewClock(phys, hlc.DefaultMaxOffset)
	restarted.Restore(hw)
	fmt.Println("now after restart:", restarted.Now())

	// Output:
	// now: 1700000000000.0
	// now: 1700000000000.1
	// now after update: 1700000010000.4
	// refused: true 2m0s
	// high water: 1700000010000.4
	// now after restart: 1700000010000.5
}
