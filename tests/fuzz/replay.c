/*  replay.c: run a fuzz target over files, for builds without libFuzzer.

    usage: fuzz_x FILE_OR_DIR...  Each regular file is one input; a
    directory means every file in it. The corpus under tests/fuzz/corpus
    runs this way in every `make test`, so an input that once crashed a
    target stays a test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_INPUT (4u << 20)  //  larger inputs are refused

static int
s_run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    uint8_t *buf = malloc(S_MAX_INPUT);
    size_t n = buf ? fread(buf, 1, S_MAX_INPUT, f) : 0;
    fclose(f);
    if (!buf)
        return 1;
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int
main(int argc, char **argv)
{
    int bad = 0, ran = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such file %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= s_run_file(argv[i]);
            ran++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            bad |= s_run_file(path);
            ran++;
        }
        if (d)
            closedir(d);
    }
    printf("replay: %d inputs\n", ran);
    return bad || ran == 0;
}
