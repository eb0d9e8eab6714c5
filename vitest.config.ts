import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // native work is multithreaded already; parallel files would oversubscribe 2 cores
    fileParallelism: false,
  },
});
