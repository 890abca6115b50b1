// Global teardown (Playwright project "cluster-teardown"): SIGTERM the nodes,
// SIGKILL after 10 s, keep their logs in test-results/cluster-logs.
import { test as teardown } from '@playwright/test';
import { stopCluster } from './cluster';

teardown('stop the Tickmesh cluster', async () => {
  teardown.setTimeout(60_000);
  await stopCluster();
});
