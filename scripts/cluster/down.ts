/** `npm run cluster:down`: stops what `npm run cluster:up` started and removes its directory. */
import { clusterDown, DEFAULT_CLUSTER_DIR } from "./topology";

const dir = process.argv[2] ?? process.env.CLUSTER_DIR ?? DEFAULT_CLUSTER_DIR;
const stopped = await clusterDown(dir);
console.log(stopped ? `stopped the topology in ${dir}` : `nothing running from ${dir}`);
