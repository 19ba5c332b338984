'use server';

/**
 * The server side of the original design: enqueue a scrape through the
 * broker (the client library talks JOBQ/1 over ZeroMQ) and hand the job's
 * id to the page, which follows it through the gateway.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { enqueueJob } from '@jobq/client';

export interface ScrapeInput {
  /** The shop's first page; by default the sample shop in examples/shop. */
  url?: string;
  /** A pause between pages, so that the progress can be seen. */
  delayMs?: number;
}

export async function enqueueScrapeReviews(shopId: string, input: ScrapeInput = {}): Promise<string> {
  const url = input.url ?? pathToFileURL(path.resolve(process.cwd(), '../shop/index.html')).href;
  return enqueueJob('scrape_reviews', shopId, { url, delay_ms: input.delayMs ?? 700 });
}
