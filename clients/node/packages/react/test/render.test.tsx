import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderToString } from 'react-dom/server';
import { JobError, JobStatus, JobStatusView, useJob, type Job, type JobState } from '../src';

function job(status: JobState, extra: Partial<Job> = {}): Job {
  return {
    id: '01a251fa8c4a0000',
    type: 'scrape_reviews',
    status,
    shopId: 'shop-42',
    progress: 0,
    message: null,
    error: null,
    attempts: 1,
    maxAttempts: 3,
    priority: 0,
    runAt: '2026-12-07T19:20:42.051Z',
    timeoutMs: 0,
    key: null,
    createdAt: '2026-12-07T19:20:42.051Z',
    updatedAt: '2026-12-07T19:20:42.051Z',
    startedAt: null,
    completedAt: null,
    worker: null,
    leaseUntil: null,
    version: 1,
    ...extra,
  };
}

describe('<JobStatusView>', () => {
  test('a running job: indicator, progress bar and message', () => {
    const html = renderToString(
      <JobStatusView
        job={job('running', { progress: 40, message: 'page 2 of 3 <b>' })}
        error={null}
        className="mine"
      />,
    );
    assert.match(html, /class="jobq-status jobq-status--running mine"/);
    assert.match(html, />Running</);
    assert.match(html, />40<!-- -->%</);
    assert.match(html, /role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="40"/);
    assert.match(html, /width:40%/);
    assert.match(html, /page 2 of 3 &lt;b&gt;/, 'text is escaped');
  });

  test('a pending job says why it waits', () => {
    const html = renderToString(
      <JobStatusView job={job('pending', { wait: { reason: 'no_worker', until: null } })} error={null} />,
    );
    assert.match(html, /jobq-status--pending/);
    assert.match(html, /Waiting to start/);
    assert.match(html, /Waiting for a worker that runs this job/);
  });

  test('every end has its message; only a completed job keeps its bar, full', () => {
    const completed = renderToString(<JobStatusView job={job('completed', { progress: 100 })} error={null} />);
    assert.match(completed, /jobq-status__success/);
    // The bar stays, full, once the job completed.
    assert.match(completed, /aria-valuenow="100"/);
    assert.match(completed, /width:100%/);
    const failed = renderToString(<JobStatusView job={job('failed', { error: 'HTTP 500' })} error={null} />);
    assert.match(failed, /jobq-status--failed/);
    assert.match(failed, /role="alert"[^>]*>HTTP 500</);
    assert.doesNotMatch(failed, /progressbar/);
    const cancelled = renderToString(<JobStatusView job={job('cancelled', { error: 'cancelled' })} error={null} />);
    assert.match(cancelled, /The job was cancelled\./);
  });

  test('before the first state: loading, or unavailable with the error', () => {
    assert.match(renderToString(<JobStatusView job={null} error={null} />), /jobq-status--loading.*Loading…/);
    const html = renderToString(
      <JobStatusView job={null} error={new JobError('unknown_job', 'no job 0000000000000001', { status: 404 })} />,
    );
    assert.match(html, /jobq-status--unavailable/);
    assert.match(html, /no job 0000000000000001/);
  });
});

describe('useJob and <JobStatus> on the server', () => {
  test('render their first state without following anything', () => {
    let seen: ReturnType<typeof useJob> | undefined;
    function Page() {
      seen = useJob({ baseUrl: 'http://127.0.0.1:9' });
      return seen.showJobStatus ? <JobStatusView job={seen.job} error={seen.error} /> : <p>idle</p>;
    }
    assert.equal(renderToString(<Page />), '<p>idle</p>');
    assert.equal(seen?.status, 'idle');
    assert.equal(seen?.progress, 0);
    assert.equal(seen?.job, null);
    assert.match(renderToString(<JobStatus jobId="01a251fa8c4a0000" baseUrl="http://127.0.0.1:9" />), /Loading…/);
  });
});
