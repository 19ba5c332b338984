/*  jobq_mdbfile.h: an LMDB data file read by hand, for --verify and
    --repair.

    LMDB itself trusts its file: a damaged page can make it assert or read
    outside its map. This reader trusts nothing. It reads pages with pread
    (never a map, so a short file is an error, not SIGBUS), checks every
    page it visits (its number, its kind, its bounds, every node inside
    them) before it uses it, visits each page once (a cycle is damage, not a
    loop) and at most 32 levels deep, and reports what is wrong where,
    skipping the damaged part and going on with the rest. It follows the
    file format of LMDB 0.9 (MDB_DATA_VERSION 1) on a little-endian 64-bit
    machine, the only one jobq builds for.
*/
#ifndef JOBQ_MDBFILE_H_INCLUDED
#define JOBQ_MDBFILE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jobq_mdbfile jobq_mdbfile_t;

typedef struct {
    uint32_t psize;    //  page size, bytes
    uint64_t pages;    //  whole pages in the file
    uint64_t last_pg;  //  last page the meta page counts
    uint64_t txnid;    //  transaction of the meta page in use
    int meta;          //  which meta page is in use, 0 or 1
    bool other_meta;   //  the other meta page is sound too
} jobq_mdbfile_info_t;

//  One entry of a database, in key order; borrowed for the call. Return
//  nonzero to stop the walk.
typedef int(jobq_mdbfile_entry_fn)(void *arg,
                                   const uint8_t *key,
                                   size_t klen,
                                   const uint8_t *val,
                                   size_t vlen);

//  Damage found: pgno is the page (UINT64_MAX when none applies), what
//  says what is wrong. The walk goes on without what that page leads to.
typedef void(jobq_mdbfile_damage_fn)(void *arg,
                                     uint64_t pgno,
                                     const char *what);

//  Open dir/data.mdb and choose its newest sound meta page. 0, or -1 with
//  why (whylen bytes) saying why: no file, not an LMDB file, a format or
//  page size it does not know, no sound meta page, out of memory.
int jobq_mdbfile_open(const char *dir,
                      jobq_mdbfile_t **out,
                      char *why,
                      size_t whylen);

void jobq_mdbfile_close(jobq_mdbfile_t **self_p);

void jobq_mdbfile_info(const jobq_mdbfile_t *self, jobq_mdbfile_info_t *out);

//  Read from the other meta page (the transaction before the last one)
//  from now on: for a file whose newest trees are lost (a truncated file
//  loses its last pages, which hold them). 0, or -1 when that meta page is
//  not sound.
int jobq_mdbfile_use_other_meta(jobq_mdbfile_t *self);

//  Walk the named database (or the main one, with name NULL) in key order.
//  Values on overflow pages are read whole (at most 64 MiB). Returns 0 once
//  walked (damage reported through dfn, which may be NULL), 1 if there is
//  no such database, -1 if the main database is too damaged to tell.
//  *entries (if not NULL) gets the number of entries the database's own
//  record counts, so a caller can tell how many were lost.
int jobq_mdbfile_walk(jobq_mdbfile_t *self,
                      const char *name,
                      jobq_mdbfile_entry_fn *efn,
                      jobq_mdbfile_damage_fn *dfn,
                      void *arg,
                      uint64_t *entries);

//  The highest page any database refers to, walking every tree it can
//  (damage is passed over): the file must hold at least that many pages
//  plus one.
uint64_t jobq_mdbfile_highest_page(jobq_mdbfile_t *self);

#endif
