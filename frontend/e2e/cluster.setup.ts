// Global setup for the cluster specs (Playwright project "cluster-setup"):
// starts the 3-node cluster. Its teardown project stops it.
import { test as setup } from '@playwright/test';
import { startCluster } from './cluster';

setup('start a 3-node Tickmesh cluster', async () => {
  setup.setTimeout(5 * 60_000); // may build the node binary first
  await startCluster();
});
