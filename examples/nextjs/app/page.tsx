'use client';

import { useState } from 'react';
import { JobStatus, useJob, type Job } from '@jobq/react';
import { enqueueScrapeReviews, type ScrapeInput } from './actions';

/** What scrape_reviews returns (docs/PROCESSORS.md), the part shown here. */
interface ScrapeOutput {
  pages_fetched: number;
  review_count: number;
  aggregate_rating?: { rating_value: number | null; review_count: number | null };
  reviews: { author: string | null; rating: number | null; title: string | null }[];
}

// The gateway's address as the browser sees it (make run: port 8080).
const GATEWAY = process.env.NEXT_PUBLIC_JOBQ_GATEWAY ?? 'http://127.0.0.1:8080';

export default function ScrapePage() {
  const [result, setResult] = useState<ScrapeOutput | null>(null);
  const { startJob, currentJobId, showJobStatus, handleJobComplete, handleJobError, status } = useJob<
    ScrapeInput,
    ScrapeOutput
  >({
    baseUrl: GATEWAY,
    onComplete: (job: Job<ScrapeInput, ScrapeOutput>) => setResult(job.output ?? null),
    onError: () => setResult(null),
  });
  const busy = status === 'starting' || status === 'pending' || status === 'running';

  return (
    <main>
      <h1>Scrape the reviews of a shop</h1>
      <p>
        A server action enqueues <code>scrape_reviews</code>; the bar below follows the job live through{' '}
        <code>jobq-gateway</code>.
      </p>
      <button
        id="start"
        disabled={busy}
        onClick={() => {
          setResult(null);
          void startJob(() => enqueueScrapeReviews('demo'));
        }}
      >
        Start
      </button>
      {showJobStatus && currentJobId && (
        <JobStatus<ScrapeInput, ScrapeOutput>
          jobId={currentJobId}
          baseUrl={GATEWAY}
          onComplete={handleJobComplete}
          onError={handleJobError}
        />
      )}
      {result && (
        <section id="result">
          <h2>
            {result.review_count} reviews from {result.pages_fetched} pages
          </h2>
          <ul>
            {result.reviews.slice(0, 5).map((r, i) => (
              <li key={i}>
                {r.rating ?? '–'}★ {r.title ?? '(no title)'} — {r.author ?? 'anonymous'}
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
