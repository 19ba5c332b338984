# JOBQ_SANITIZE=address,undefined (or thread) adds the flags everywhere.
if(JOBQ_SANITIZE)
  add_compile_options(-fsanitize=${JOBQ_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${JOBQ_SANITIZE})
endif()
