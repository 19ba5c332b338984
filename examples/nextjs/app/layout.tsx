import type { ReactNode } from 'react';

export const metadata = { title: 'jobq: scrape reviews' };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: 'system-ui, sans-serif', margin: '2rem auto', maxWidth: 640 }}>
        {children}
      </body>
    </html>
  );
}
