/*  test_outfile.c: file names that cannot leave the export directory, and
    files that appear whole or not at all. */
#include "jobq_test.h"
#include "jobq_outfile.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
s_ok(const char *name, size_t len)
{
    char why[128];
    return jobq_outfile_name_ok(name, len, why, sizeof why);
}

static void
test_outfile_names_that_escape_are_refused(void **state)
{
    (void) state;
    static const char *const bad[] = {
        "",        ".",     "..",  "../x.csv", "a/b.csv",   "/etc/passwd",
        ".hidden", "x\\y",  "a b", "tab\t",    "new\nline", "caf\xc3\xa9",
        "~root",   "$HOME", "a:b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(s_ok(bad[i], strlen(bad[i])));
    assert_false(s_ok("a\0b.csv", 7));
    char longname[JOBQ_OUTFILE_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname);
    assert_true(s_ok(longname, JOBQ_OUTFILE_MAX_NAME));
    assert_false(s_ok(longname, JOBQ_OUTFILE_MAX_NAME + 1));
    static const char *const good[] = {"reviews.csv", "report-1.html", "a..b",
                                       "UPPER_case-2.ndjson"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(s_ok(good[i], strlen(good[i])));
    char why[128];
    assert_false(jobq_outfile_name_ok("a/b", 3, why, sizeof why));
    assert_non_null(strstr(why, "byte 1"));
}

static int
s_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void
test_outfile_appears_whole_on_commit_and_not_at_all_on_abort(void **state)
{
    (void) state;
    char *tmp = jobq_test_tmpdir();
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/deep/exports", tmp);
    jobq_outfile_t o;
    assert_int_equal(jobq_outfile_open(&o, dir, "a.csv"), JOBQ_OK);
    snprintf(path, sizeof path, "%s/a.csv", dir);
    assert_non_null(strstr(o.path, "/deep/exports/a.csv"));
    fputs("hello\r\n", o.f);
    //  Not there under its name before the commit.
    assert_null(fopen(path, "r"));
    uint64_t bytes = 0;
    assert_int_equal(jobq_outfile_commit(&o, &bytes), JOBQ_OK);
    assert_int_equal(bytes, 7);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[32];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "hello\r\n");
    fclose(f);
    jobq_outfile_abort(&o);  //  after a commit: nothing
    assert_int_equal(s_entries(dir), 1);
    //  Replaced whole; an aborted file leaves nothing behind.
    assert_int_equal(jobq_outfile_open(&o, dir, "a.csv"), JOBQ_OK);
    fputs("second", o.f);
    assert_int_equal(jobq_outfile_commit(&o, &bytes), JOBQ_OK);
    assert_int_equal(bytes, 6);
    assert_int_equal(jobq_outfile_open(&o, dir, "b.csv"), JOBQ_OK);
    fputs("never", o.f);
    jobq_outfile_abort(&o);
    assert_int_equal(s_entries(dir), 1);
    assert_int_equal(jobq_outfile_open(&o, dir, "../a.csv"), JOBQ_EINVAL);
    jobq_test_rmtree(tmp);
    free(tmp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outfile_names_that_escape_are_refused),
        cmocka_unit_test(
            test_outfile_appears_whole_on_commit_and_not_at_all_on_abort),
    };
    return cmocka_run_group_tests_name("outfile", tests, NULL, NULL);
}
