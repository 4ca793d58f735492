/**
 * At most `permits` holders at once; up to `maxWaiting` more wait their turn
 * in arrival order, each at most `waitMs`. Past either bound `acquire`
 * resolves to null at once (or when the wait runs out): the caller sheds the
 * work rather than queueing without end.
 */
export class Semaphore {
  private held = 0;
  private readonly waiting: { grant: () => void }[] = [];

  constructor(
    readonly permits: number,
    readonly maxWaiting: number,
    readonly waitMs: number,
  ) {}

  get inUse(): number {
    return this.held;
  }

  acquire(): Promise<(() => void) | null> {
    if (this.held < this.permits) return Promise.resolve(this.grant());
    if (this.waiting.length >= this.maxWaiting) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(this.grant());
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(null);
      }, this.waitMs);
      this.waiting.push(waiter);
    });
  }

  private grant(): () => void {
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      const next = this.waiting.shift();
      if (next) next.grant();
    };
  }
}
