/** Time source, injected so that time-based logic can be tested without sleeping. */
export interface Clock {
  nowMs(): number;
  now(): Date;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  now: () => new Date(),
};

/** A clock that only moves when told to (tests). */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.UTC(2030, 0, 1)) {}
  nowMs(): number {
    return this.ms;
  }
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}
