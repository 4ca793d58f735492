/**
 * The driver adapter the Prisma CLI uses for migrations.
 *
 * Why it exists: the CLI's native schema engine cannot be downloaded on an
 * offline machine, so migrations run on the JS (WASM) schema engine over
 * @prisma/adapter-pg. The stock adapter breaks in four ways there, each fixed
 * below:
 *  1. catalog columns of type `name` (oid 19) and `"char"` (oid 18) are not
 *     mapped ("Unsupported column type"); we report them as text, and `"char"`
 *     as a Character column, or the engine panics as soon as a CHECK
 *     constraint exists (it reads pg_constraint.contype);
 *  2. its shadow database is dropped while its pool is still connected, and the
 *     pool leaks;
 *  3. `executeScript` splits the migration on `;`, which breaks `$$` bodies;
 *  4. idle pool timers keep the CLI alive for seconds after it is done.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";

const OID_CHAR = 18;
const OID_NAME = 19;
const OID_TEXT = 25;
/** ColumnTypeEnum.Character in @prisma/driver-adapter-utils. */
const COLUMN_TYPE_CHARACTER = 6;

/** Result rows arrays → indexes of the columns that were `"char"`. */
const charColumns = new WeakMap<object, number[]>();

type Field = { dataTypeID: number };
type Result = { fields?: Field[]; rows?: object };

function normalize<T>(result: T): T {
  const results = (Array.isArray(result) ? result : [result]) as Result[];
  for (const r of results) {
    if (!r?.fields) continue;
    const chars: number[] = [];
    r.fields.forEach((field, i) => {
      if (field.dataTypeID === OID_CHAR) chars.push(i);
      if (field.dataTypeID === OID_CHAR || field.dataTypeID === OID_NAME) field.dataTypeID = OID_TEXT;
    });
    if (chars.length > 0 && r.rows) charColumns.set(r.rows, chars);
  }
  return result;
}

type Callback = (err: Error | null, res: unknown) => void;

class TextualClient extends pg.Client {
  // pg's overloads cannot be restated generically; the wrapper only rewrites
  // the result's field metadata and passes everything else through.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: any[]): any {
    const cbIndex = args.findIndex((a) => typeof a === "function");
    if (cbIndex >= 0) {
      const cb = args[cbIndex] as Callback;
      args[cbIndex] = (err: Error | null, res: unknown) => cb(err, err ? res : normalize(res));
      return (super.query as (...a: unknown[]) => unknown)(...args);
    }
    const out = (super.query as (...a: unknown[]) => unknown)(...args);
    if (out && typeof (out as Promise<unknown>).then === "function") {
      return (out as Promise<unknown>).then(normalize);
    }
    return out;
  }
}

type RawResult = { columnTypes: number[]; rows: object };
type Queryable = {
  queryRaw: (q: unknown) => Promise<RawResult>;
};
type Adapter = Queryable & {
  startTransaction: (isolation?: unknown) => Promise<Queryable>;
  executeScript: (script: string) => Promise<void>;
  underlyingDriver: () => pg.Pool;
  onError: (e: unknown) => never;
  dispose: () => Promise<void>;
};

function reportCharColumns<Q extends Queryable>(queryable: Q): Q {
  const queryRaw = queryable.queryRaw.bind(queryable);
  queryable.queryRaw = async (q) => {
    const result = await queryRaw(q);
    for (const i of charColumns.get(result.rows) ?? []) result.columnTypes[i] = COLUMN_TYPE_CHARACTER;
    return result;
  };
  return queryable;
}

function withDatabase(connectionString: string, database: string): string {
  const url = new URL(connectionString);
  url.pathname = `/${database}`;
  return url.toString();
}

async function runOnce(connectionString: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export class MigrationPgAdapter extends PrismaPg {
  constructor(private readonly connectionString: string) {
    super({
      connectionString,
      Client: TextualClient,
      max: 4,
      idleTimeoutMillis: 200,
      allowExitOnIdle: true,
    });
  }

  override async connect(): ReturnType<PrismaPg["connect"]> {
    const adapter = (await super.connect()) as unknown as Adapter;
    reportCharColumns(adapter);
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolation) => reportCharColumns(await startTransaction(isolation));
    // One round trip for the whole script, so `$$` bodies survive.
    adapter.executeScript = async (script) => {
      try {
        await adapter.underlyingDriver().query(script);
      } catch (error) {
        adapter.onError(error);
      }
    };
    return adapter as unknown as Awaited<ReturnType<PrismaPg["connect"]>>;
  }

  override async connectToShadowDb(): ReturnType<PrismaPg["connectToShadowDb"]> {
    const database = `prisma_shadow_${randomUUID().replaceAll("-", "")}`;
    await runOnce(this.connectionString, `CREATE DATABASE "${database}"`);
    const shadow = new MigrationPgAdapter(withDatabase(this.connectionString, database));
    const adapter = (await shadow.connect()) as unknown as Adapter;
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await runOnce(this.connectionString, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    };
    return adapter as unknown as Awaited<ReturnType<PrismaPg["connectToShadowDb"]>>;
  }
}
