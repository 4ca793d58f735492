// Preloaded into a drill's server (`node --import …/skewed-clock.mjs`): its wall
// clock runs FP_DRILL_CLOCK_OFFSET_MS ahead (or behind, when negative) of the
// machine's, as a host whose NTP has drifted would. Monotonic timers
// (performance.now, setTimeout) are untouched, as they are on such a host.
const offset = Number(process.env.FP_DRILL_CLOCK_OFFSET_MS ?? 0);
const RealDate = Date;

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...args);
  }

  static now() {
    return RealDate.now() + offset;
  }
}

globalThis.Date = SkewedDate;
