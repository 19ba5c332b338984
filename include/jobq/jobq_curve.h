/*  jobq_curve.h: CURVE keys for clients, workers and the broker.

    A broker started with --keys speaks only CURVE (ZeroMQ's RFC 26:
    Curve25519 keys, every message encrypted and authenticated). Each peer
    then needs its own key pair and the broker's public key. `jobq keygen
    PATH` writes a pair in czmq's certificate format: PATH holds the public
    key, PATH_secret both keys (mode 0600). Certificates made by czmq's
    zcert_save or zmakecert read the same.

    Where a program finds them (docs/PROTOCOL.md section 13): the flags
    --cert PATH_secret and --broker-key KEY, or else the environment
    variables JOBQ_CERT and JOBQ_BROKER_KEY. KEY is the broker's public key
    as 40 characters of Z85, or the path of its public certificate.
*/
#ifndef JOBQ_CURVE_H_INCLUDED
#define JOBQ_CURVE_H_INCLUDED

#include <stddef.h>

#include "jobq/jobq_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define JOBQ_CURVE_Z85_LEN 40  //  a key in Z85 text

//  What a connecting peer needs: its pair and the broker's public key, as
//  NUL-terminated Z85 text.
typedef struct {
    char public_key[JOBQ_CURVE_Z85_LEN + 1];
    char secret_key[JOBQ_CURVE_Z85_LEN + 1];
    char server_key[JOBQ_CURVE_Z85_LEN + 1];
} jobq_curve_t;

//  Read the certificate at path: its public key into public_z85 and, when
//  secret_z85 is not NULL, its secret key (which must then be there).
//  Each buffer holds JOBQ_CURVE_Z85_LEN + 1 bytes. JOBQ_OK, or
//  JOBQ_ESTORAGE (cannot read it) / JOBQ_EINVAL (not a certificate, or a
//  key is missing or malformed) with why set.
JOBQ_EXPORT int jobq_curve_read(const char *path,
                                char *public_z85,
                                char *secret_z85,
                                char *why,
                                size_t why_len);

//  Fill keys from a secret certificate's path and the broker's key (Z85
//  text, or a public certificate's path). NULL arguments are taken from
//  JOBQ_CERT and JOBQ_BROKER_KEY. JOBQ_OK; JOBQ_ENOTFOUND when neither is
//  given anywhere (plain connections); JOBQ_EINVAL / JOBQ_ESTORAGE with
//  why set when only one is, or one cannot be read.
JOBQ_EXPORT int jobq_curve_setup(jobq_curve_t *keys,
                                 const char *cert,
                                 const char *broker_key,
                                 char *why,
                                 size_t why_len);

//  Make a new pair and write it to path (public) and path_secret (mode
//  0600), named name in their metadata. Refuses to overwrite: JOBQ_EEXIST.
//  public_z85 (JOBQ_CURVE_Z85_LEN + 1 bytes, or NULL) gets the public key.
//  JOBQ_OK, or an error with why set.
JOBQ_EXPORT int jobq_curve_keygen(const char *path,
                                  const char *name,
                                  char *public_z85,
                                  char *why,
                                  size_t why_len);

#ifdef __cplusplus
}
#endif
#endif
